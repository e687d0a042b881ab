package terraform

// The layout's invariants (see doc.go), checked on the real modules and,
// to show each checker can fail, on snippets that break one rule each.

import (
	"fmt"
	"math/big"
	"net/netip"
	"path"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// ---------------------------------------------------------------------------
// Checkers. Each returns one line per problem; none means the rule holds.

var requiredFiles = []string{"versions.tf", "variables.tf", "outputs.tf", "README.md"}

func checkModuleFiles(m *module) []string {
	var problems []string
	for _, want := range requiredFiles {
		found := false
		for _, f := range m.files {
			found = found || f == want
		}
		if !found {
			problems = append(problems, fmt.Sprintf("%s: no %s", m.dir, want))
		}
	}
	return problems
}

func checkVariables(m *module) []string {
	var problems []string
	for _, name := range sortedKeys(m.variables) {
		v := m.variables[name]
		desc := cty.NilVal
		if a, ok := v.block.Body.Attributes["description"]; ok {
			desc, _ = a.Expr.Value(nil)
		}
		if !desc.IsWhollyKnown() || desc.IsNull() || desc.Type() != cty.String || strings.TrimSpace(desc.AsString()) == "" {
			problems = append(problems, fmt.Sprintf("%s: variable %q has no description", m.dir, name))
		}
		if _, ok := v.block.Body.Attributes["type"]; !ok {
			problems = append(problems, fmt.Sprintf("%s: variable %q has no type", m.dir, name))
		}
	}
	return problems
}

// checkBuckets: every aws_s3_bucket is versioned, encrypted with aws:kms,
// closed by a public access block with all four flags, lifecycled (expiry of
// noncurrent versions, abort of incomplete multipart uploads) and replicated.
// The artifacts bucket (aws_s3_bucket.artifacts) is exempt but for the
// public access block: it holds only the release, written by Terraform, and
// is rebuilt by `make release` and `terraform apply`, not restored.
func checkBuckets(in *instance) []string {
	var problems []string
	companions := func(typ, bucket string) []scope {
		var out []scope
		for _, r := range in.resourcesOf(typ) {
			if refersTo(r.body, "bucket", bucket) {
				out = append(out, in.scopes(r)...)
			}
		}
		return out
	}
	for _, b := range in.resourcesOf("aws_s3_bucket") {
		addr := b.addr()
		report := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("%s: %s: ", in.path, addr)+fmt.Sprintf(format, args...))
		}
		if b.name == "artifacts" {
			if len(companions("aws_s3_bucket_public_access_block", addr)) == 0 {
				report("no public access block")
			}
			continue
		}

		versioned := false
		for _, s := range companions("aws_s3_bucket_versioning", addr) {
			for _, c := range nested(s, "versioning_configuration") {
				versioned = versioned || isString(evalAttr(c.ctx, c.body, "status"), "Enabled")
			}
		}
		if !versioned {
			report("no aws_s3_bucket_versioning with status Enabled")
		}

		rules, kms := 0, 0
		for _, s := range companions("aws_s3_bucket_server_side_encryption_configuration", addr) {
			for _, r := range nested(s, "rule") {
				rules++
				for _, d := range nested(r, "apply_server_side_encryption_by_default") {
					if isString(evalAttr(d.ctx, d.body, "sse_algorithm"), "aws:kms", "aws:kms:dsse") {
						kms++
						break
					}
				}
			}
		}
		if rules == 0 || kms != rules {
			report("server-side encryption is not aws:kms")
		}

		blocked := false
		for _, s := range companions("aws_s3_bucket_public_access_block", addr) {
			all := true
			for _, flag := range []string{"block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"} {
				all = all && isTrue(evalAttr(s.ctx, s.body, flag))
			}
			blocked = blocked || all
		}
		if !blocked {
			report("no public access block with all four flags true")
		}

		lifecycled := false
		for _, s := range companions("aws_s3_bucket_lifecycle_configuration", addr) {
			for _, r := range nested(s, "rule") {
				lifecycled = lifecycled || isString(evalAttr(r.ctx, r.body, "status"), "Enabled") &&
					len(nested(r, "noncurrent_version_expiration")) > 0 &&
					len(nested(r, "abort_incomplete_multipart_upload")) > 0
			}
		}
		if !lifecycled {
			report("no enabled lifecycle rule expiring noncurrent versions and aborting incomplete multipart uploads")
		}

		replicated := false
		for _, s := range companions("aws_s3_bucket_replication_configuration", addr) {
			for _, r := range nested(s, "rule") {
				replicated = replicated || isString(evalAttr(r.ctx, r.body, "status"), "Enabled") && len(nested(r, "destination")) > 0
			}
		}
		if !replicated {
			report("no replication configuration with an enabled rule")
		}
	}
	return problems
}

var worldCIDRs = map[string]bool{"0.0.0.0/0": true, "::/0": true}

// worldOpen returns the world-wide CIDR that s's attribute name may hold:
// written literally anywhere in the expression, or in its value.
func worldOpen(s scope, name string) string {
	a, ok := s.body.Attributes[name]
	if !ok {
		return ""
	}
	found := ""
	hclsyntax.VisitAll(a.Expr, func(n hclsyntax.Node) hcl.Diagnostics {
		if lit, ok := n.(*hclsyntax.LiteralValueExpr); ok && lit.Val.Type() == cty.String && worldCIDRs[lit.Val.AsString()] {
			found = lit.Val.AsString()
		}
		return nil
	})
	if found != "" {
		return found
	}
	v, diags := eval(s.ctx, a.Expr)
	if diags.HasErrors() {
		return ""
	}
	var walk func(v cty.Value)
	walk = func(v cty.Value) {
		switch {
		case !v.IsKnown() || v.IsNull():
		case v.Type() == cty.String:
			if worldCIDRs[v.AsString()] {
				found = v.AsString()
			}
		case v.CanIterateElements():
			for _, kv := range pairs(v) {
				walk(kv[1])
			}
		}
	}
	walk(v)
	return found
}

// checkOpenRules: no security group rule admits 0.0.0.0/0 or ::/0, except
// on a security group that a load balancer (the API's) uses.
func checkOpenRules(in *instance) []string {
	lbGroups := map[string]bool{}
	for _, typ := range []string{"aws_lb", "aws_alb", "aws_elb"} {
		for _, r := range in.resourcesOf(typ) {
			if a, ok := r.body.Attributes["security_groups"]; ok {
				for _, ref := range refs(a.Expr) {
					lbGroups[ref] = true
				}
			}
		}
	}
	groupOf := func(body *hclsyntax.Body) string {
		if a, ok := body.Attributes["security_group_id"]; ok {
			for _, ref := range refs(a.Expr) {
				if strings.HasPrefix(ref, "aws_security_group.") {
					return ref
				}
			}
		}
		return "an unknown security group"
	}
	var problems []string
	check := func(r *resource, s scope, group string, attrs ...string) {
		for _, name := range attrs {
			if cidr := worldOpen(s, name); cidr != "" && !lbGroups[group] {
				problems = append(problems, fmt.Sprintf("%s: %s admits %s on %s, which is not the API load balancer's security group", in.path, r.addr(), cidr, group))
				return
			}
		}
	}
	for _, r := range in.mod.resources {
		for _, s := range in.scopes(r) {
			switch r.typ {
			case "aws_security_group":
				for _, kind := range []string{"ingress", "egress"} {
					for _, b := range nested(s, kind) {
						check(r, b, r.addr(), "cidr_blocks", "ipv6_cidr_blocks")
					}
				}
			case "aws_security_group_rule":
				check(r, s, groupOf(s.body), "cidr_blocks", "ipv6_cidr_blocks")
			case "aws_vpc_security_group_ingress_rule", "aws_vpc_security_group_egress_rule":
				check(r, s, groupOf(s.body), "cidr_ipv4", "cidr_ipv6")
			}
		}
	}
	return problems
}

// checkProviderWiring: every region module gets its own provider alias, and
// that provider's region is the region the module is told it is in.
func checkProviderWiring(in *instance) []string {
	var problems []string
	providerRegion := map[string]cty.Value{}
	for _, p := range in.mod.providers {
		if alias, ok := str(evalAttr(in.ctx, p.Body, "alias")); ok && p.Labels[0] == "aws" {
			providerRegion["aws."+alias] = evalAttr(in.ctx, p.Body, "region")
		}
	}
	used := map[string]string{}
	for _, c := range regionCalls(in) {
		alias := ""
		if a, ok := c.body.Attributes["providers"]; ok {
			if obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr); ok {
				for _, item := range obj.Items {
					if hcl.ExprAsKeyword(item.KeyExpr) == "aws" {
						if refs := refs(item.ValueExpr); len(refs) == 1 {
							alias = refs[0]
						}
					}
				}
			}
		}
		region := evalAttr(in.ctx, c.body, "region")
		switch want, ok := providerRegion[alias]; {
		case alias == "" || !ok:
			problems = append(problems, fmt.Sprintf("%s: module %q is not given an aliased aws provider of this module", in.path, c.name))
		case used[alias] != "":
			problems = append(problems, fmt.Sprintf("%s: modules %q and %q share the provider %s", in.path, used[alias], c.name, alias))
		case !region.IsWhollyKnown() || !want.IsWhollyKnown() || !want.RawEquals(region):
			problems = append(problems, fmt.Sprintf("%s: module %q: region %s but its provider %s is in %s", in.path, c.name, region.GoString(), alias, want.GoString()))
		}
		used[alias] = c.name
	}
	return problems
}

func regionCalls(in *instance) []*call {
	var out []*call
	for _, c := range in.mod.calls {
		if path.Clean(c.source) == "modules/region" {
			out = append(out, c)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Topology: what each region deploys, as the root module wires it.

var hashSpaceSize = new(big.Int).Lsh(big.NewInt(1), 64)

type viewGroup struct {
	key        string
	space      string
	start, end *big.Int
	minSize    int
}

type voter struct{ id, ip string }

type regionLayout struct {
	module       string // the root module's call, e.g. region_a
	region       string
	vpcCIDR      string
	voters       []voter
	views        []viewGroup
	replicatesTo []string
}

// regionsOf reads the regions of a root-module instance from the region
// module instances it calls.
func regionsOf(root *instance, all []*instance) ([]regionLayout, error) {
	var out []regionLayout
	for _, c := range regionCalls(root) {
		var in *instance
		for _, cand := range all {
			if cand.path == root.path+"/module."+c.name {
				in = cand
			}
		}
		if in == nil {
			return nil, fmt.Errorf("%s: module %q was not instantiated", root.path, c.name)
		}
		vars := in.ctx.Variables["var"]
		r := regionLayout{module: c.name}
		r.region, _ = str(vars.GetAttr("region"))
		r.vpcCIDR, _ = str(vars.GetAttr("vpc_cidr"))
		voters := in.ctx.Variables["local"].GetAttr("log_voters")
		if !voters.IsWhollyKnown() {
			return nil, fmt.Errorf("%s: local.log_voters is not known offline", in.path)
		}
		for _, v := range voters.AsValueSlice() {
			r.voters = append(r.voters, voter{id: v.GetAttr("id").AsString(), ip: v.GetAttr("ip").AsString()})
		}
		for _, asg := range in.resourcesOf("aws_autoscaling_group") {
			if asg.name != "view" {
				continue
			}
			for _, s := range in.scopes(asg) {
				each := s.ctx.Variables["each"]
				if !each.IsWhollyKnown() {
					return nil, fmt.Errorf("%s: the view groups' for_each is not known offline", in.path)
				}
				val := each.GetAttr("value")
				g := viewGroup{key: each.GetAttr("key").AsString(), space: val.GetAttr("space").AsString()}
				var ok1, ok2 bool
				g.start, ok1 = new(big.Int).SetString(val.GetAttr("start").AsString(), 0)
				g.end, ok2 = new(big.Int).SetString(val.GetAttr("end").AsString(), 0)
				if !ok1 || !ok2 {
					return nil, fmt.Errorf("%s: view group %s: range %s is not two integers", in.path, g.key, val.GoString())
				}
				g.minSize, _ = asInt(evalAttr(s.ctx, s.body, "min_size"))
				r.views = append(r.views, g)
			}
		}
		if dests := vars.GetAttr("replication_destinations"); dests.IsKnown() && !dests.IsNull() {
			for _, d := range dests.AsValueSlice() {
				if region, ok := str(d.GetAttr("region")); ok {
					r.replicatesTo = append(r.replicatesTo, region)
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// checkTopology: three regions; losing any one keeps a Raft majority of the
// log's voters; every region runs at least two views of every partition, and
// each space's partitions tile [0, 2^64); every region replicates its bucket
// to every other.
func checkTopology(regions []regionLayout) []string {
	var problems []string
	report := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	if len(regions) != 3 {
		report("%d regions, want 3", len(regions))
	}
	names := map[string]bool{}
	for _, r := range regions {
		if r.region == "" || names[r.region] {
			report("module %s: region %q is empty or repeated", r.module, r.region)
		}
		names[r.region] = true
	}

	total, most, mostRegion := 0, 0, ""
	ids, ips := map[string]bool{}, map[string]bool{}
	for _, r := range regions {
		total += len(r.voters)
		if len(r.voters) > most {
			most, mostRegion = len(r.voters), r.region
		}
		vpc, vpcErr := netip.ParsePrefix(r.vpcCIDR)
		for _, v := range r.voters {
			ip, err := netip.ParseAddr(v.ip)
			switch {
			case ids[v.id] || ips[v.ip]:
				report("log voter %s (%s) repeats an ID or address", v.id, v.ip)
			case err != nil || vpcErr != nil || !vpc.Contains(ip):
				report("log voter %s: address %s is not in %s's VPC %s", v.id, v.ip, r.region, r.vpcCIDR)
			}
			ids[v.id], ips[v.ip] = true, true
		}
	}
	majority := total/2 + 1
	if total == 0 || total-most < majority {
		report("losing %s takes %d of %d log voters, leaving %d, below the Raft majority %d", mostRegion, most, total, total-most, majority)
	}

	for _, r := range regions {
		bySpace := map[string][]viewGroup{}
		for _, g := range r.views {
			bySpace[g.space] = append(bySpace[g.space], g)
			if g.minSize < 2 {
				report("%s: view partition %s runs %d views, want at least 2", r.region, g.key, g.minSize)
			}
		}
		for _, space := range []string{"HashSP", "HashPO"} {
			gs := bySpace[space]
			if len(gs) == 0 {
				report("%s: no views of space %s", r.region, space)
				continue
			}
			sort.Slice(gs, func(i, j int) bool { return gs[i].start.Cmp(gs[j].start) < 0 })
			next := big.NewInt(0)
			for _, g := range gs {
				if g.start.Cmp(next) != 0 || g.end.Cmp(g.start) <= 0 {
					report("%s: %s partitions do not tile [0, 2^64): %s covers [%#x, %#x), expected to start at %#x", r.region, space, g.key, g.start, g.end, next)
				}
				next = g.end
			}
			if next.Cmp(hashSpaceSize) != 0 {
				report("%s: %s partitions end at %#x, not 2^64", r.region, space, next)
			}
		}
		for space := range bySpace {
			if space != "HashSP" && space != "HashPO" {
				report("%s: views of unknown space %q", r.region, space)
			}
		}

		to := map[string]bool{}
		for _, d := range r.replicatesTo {
			to[d] = true
		}
		for _, other := range regions {
			if other.region != r.region && !to[other.region] {
				report("%s: bucket does not replicate to %s, which could then not restore alone", r.region, other.region)
			}
		}
	}
	return problems
}

// validate evaluates v's validation blocks for val: nil when all hold.
func validate(v *variable, val cty.Value) error {
	if c, err := convert.Convert(val, v.typ); err == nil {
		val = c
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(map[string]cty.Value{v.name: val})},
		Functions: functions(),
	}
	for _, b := range v.block.Body.Blocks {
		if b.Type != "validation" {
			continue
		}
		cond, diags := b.Body.Attributes["condition"].Expr.Value(ctx)
		if diags.HasErrors() {
			return fmt.Errorf("variable %q: condition: %s", v.name, diags.Error())
		}
		if !cond.IsWhollyKnown() || cond.IsNull() || cond.False() {
			msg, _ := b.Body.Attributes["error_message"].Expr.Value(nil)
			return fmt.Errorf("variable %q rejects %s: %s", v.name, val.GoString(), msg.AsString())
		}
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ---------------------------------------------------------------------------
// Tests of the layout.

func load(t *testing.T) (*layout, []*instance) {
	t.Helper()
	l, err := loadLayout(".")
	if err != nil {
		t.Fatalf("load layout: %v", err)
	}
	ins, problems := l.instances()
	for _, p := range problems {
		t.Error(p)
	}
	return l, ins
}

func reportAll(t *testing.T, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Error(p)
	}
}

func TestModulesHaveStandardFiles(t *testing.T) {
	l, _ := load(t)
	for _, want := range []string{".", "modules/region", "modules/peering", "examples/small"} {
		if l.modules[want] == nil {
			t.Errorf("no module %s", want)
		}
	}
	for _, m := range l.sortedModules() {
		reportAll(t, checkModuleFiles(m))
	}
}

func TestVariablesHaveDescriptionAndType(t *testing.T) {
	l, _ := load(t)
	for _, m := range l.sortedModules() {
		if len(m.variables) == 0 && m.dir != "." {
			continue
		}
		reportAll(t, checkVariables(m))
	}
}

func TestThreeRegionsByDefault(t *testing.T) {
	l, ins := load(t)
	regions := l.modules["."].variables["regions"]
	if regions == nil || regions.def == cty.NilVal {
		t.Fatal("the root module has no variable regions with a default")
	}
	if n := regions.def.LengthInt(); n != 3 {
		t.Errorf("var.regions defaults to %d regions, want 3", n)
	}
	for _, in := range ins {
		if in.mod.dir == "." {
			if n := len(regionCalls(in)); n != 3 {
				t.Errorf("%s: %d region modules, want 3", in.path, n)
			}
			reportAll(t, checkProviderWiring(in))
		}
	}
}

// TestTopology checks the root module's defaults and every example.
func TestTopology(t *testing.T) {
	_, ins := load(t)
	roots := 0
	for _, in := range ins {
		if in.mod.dir != "." {
			continue
		}
		roots++
		regions, err := regionsOf(in, ins)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range checkTopology(regions) {
			t.Errorf("%s: %s", in.path, p)
		}
		voters, views := 0, 0
		for _, r := range regions {
			voters += len(r.voters)
			views += len(r.views)
		}
		t.Logf("%s: %d regions, %d log voters, %d view groups", in.path, len(regions), voters, views)
	}
	if roots < 2 {
		t.Errorf("the root module was deployed %d times (defaults and examples), want at least 2", roots)
	}
}

func TestBuckets(t *testing.T) {
	_, ins := load(t)
	buckets := 0
	for _, in := range ins {
		buckets += len(in.resourcesOf("aws_s3_bucket"))
		reportAll(t, checkBuckets(in))
	}
	if buckets == 0 {
		t.Error("no aws_s3_bucket anywhere: the checker checked nothing")
	}
}

func TestNoWorldOpenRulesButTheLoadBalancer(t *testing.T) {
	_, ins := load(t)
	rules := 0
	for _, in := range ins {
		rules += len(in.resourcesOf("aws_vpc_security_group_ingress_rule"))
		reportAll(t, checkOpenRules(in))
	}
	if rules == 0 {
		t.Error("no security group rules anywhere: the checker checked nothing")
	}
}

// TestValidations: the root module's own validation rejects topologies that
// break the invariants, so a tfvars file cannot slip past them either.
func TestValidations(t *testing.T) {
	l, _ := load(t)
	vars := l.modules["."].variables
	nums := func(ns ...int64) cty.Value {
		var vs []cty.Value
		for _, n := range ns {
			vs = append(vs, cty.NumberIntVal(n))
		}
		return cty.TupleVal(vs)
	}
	strs := func(ss ...string) cty.Value {
		var vs []cty.Value
		for _, s := range ss {
			vs = append(vs, cty.StringVal(s))
		}
		return cty.TupleVal(vs)
	}
	for _, tc := range []struct {
		variable string
		value    cty.Value
		ok       bool
	}{
		{"log_voters_per_region", nums(1, 1, 1), true},
		{"log_voters_per_region", nums(2, 2, 1), true},
		{"log_voters_per_region", nums(3, 3, 3), true},
		{"log_voters_per_region", nums(2, 1, 1), false},
		{"log_voters_per_region", nums(3, 1, 1), false},
		{"log_voters_per_region", nums(1, 1, 0), false},
		{"log_voters_per_region", nums(1, 1), false},
		{"view_replicas_per_region", cty.NumberIntVal(2), true},
		{"view_replicas_per_region", cty.NumberIntVal(1), false},
		{"regions", strs("us-east-1", "us-west-2", "eu-west-1"), true},
		{"regions", strs("us-east-1", "us-west-2"), false},
		{"regions", strs("us-east-1", "us-east-1", "eu-west-1"), false},
		{"view_partitions", cty.ObjectVal(map[string]cty.Value{"HashSP": cty.NumberIntVal(4), "HashPO": cty.NumberIntVal(4)}), true},
		{"view_partitions", cty.ObjectVal(map[string]cty.Value{"HashSP": cty.NumberIntVal(4)}), false},
		{"view_partitions", cty.ObjectVal(map[string]cty.Value{"HashSP": cty.NumberIntVal(0), "HashPO": cty.NumberIntVal(4)}), false},
	} {
		v := vars[tc.variable]
		if v == nil {
			t.Errorf("no root variable %s", tc.variable)
			continue
		}
		err := validate(v, tc.value)
		if (err == nil) != tc.ok {
			t.Errorf("validate %s = %s: got %v, want ok=%v", tc.variable, tc.value.GoString(), err, tc.ok)
		}
	}
	// The defaults themselves pass.
	for _, name := range sortedKeys(vars) {
		if v := vars[name]; v.def != cty.NilVal {
			if err := validate(v, v.def); err != nil {
				t.Errorf("default: %v", err)
			}
		}
	}
}

// TestArgumentsPassValidations: what every caller (the root's defaults, the
// examples, the root for each region) passes satisfies the callee's own
// validations, as terraform plan would require.
func TestArgumentsPassValidations(t *testing.T) {
	_, ins := load(t)
	checked := 0
	for _, in := range ins {
		vars := in.ctx.Variables["var"]
		for _, name := range sortedKeys(in.mod.variables) {
			val := vars.GetAttr(name)
			if !val.IsWhollyKnown() {
				continue // needs the cloud, or a value the operator supplies
			}
			checked++
			if err := validate(in.mod.variables[name], val); err != nil {
				t.Errorf("%s: %v", in.path, err)
			}
		}
	}
	if checked == 0 {
		t.Error("no argument was checked")
	}
}

// ---------------------------------------------------------------------------
// The checkers catch what they are for: each snippet breaks one rule.

func snippet(t *testing.T, src string) *instance {
	t.Helper()
	m, err := parseModule("snippet", map[string][]byte{"main.tf": []byte(src)})
	if err != nil {
		t.Fatalf("parse snippet: %v", err)
	}
	return newInstance("snippet", m, nil)
}

const goodBucket = `
resource "aws_s3_bucket" "b" {
  bucket = "b"
}
resource "aws_s3_bucket_versioning" "b" {
  bucket = aws_s3_bucket.b.id
  versioning_configuration {
    status = "Enabled"
  }
}
resource "aws_s3_bucket_server_side_encryption_configuration" "b" {
  bucket = aws_s3_bucket.b.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
  }
}
resource "aws_s3_bucket_public_access_block" "b" {
  bucket                  = aws_s3_bucket.b.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}
resource "aws_s3_bucket_lifecycle_configuration" "b" {
  bucket = aws_s3_bucket.b.id
  rule {
    id     = "retention"
    status = "Enabled"
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}
variable "destinations" {
  type    = list(string)
  default = ["arn:aws:s3:::c"]
}
resource "aws_s3_bucket_replication_configuration" "b" {
  bucket = aws_s3_bucket.b.id
  role   = "arn:aws:iam::1:role/r"
  dynamic "rule" {
    for_each = var.destinations
    content {
      status = "Enabled"
      destination {
        bucket = rule.value
      }
    }
  }
}
`

func TestBucketCheckerCatchesViolations(t *testing.T) {
	if p := checkBuckets(snippet(t, goodBucket)); len(p) != 0 {
		t.Fatalf("the good bucket has problems: %v", p)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"versioning suspended", `status = "Enabled"
  }`, `status = "Suspended"
  }`, "versioning"},
		{"versioning missing", `resource "aws_s3_bucket_versioning" "b" {
  bucket = aws_s3_bucket.b.id`, `resource "aws_s3_bucket_versioning" "b" {
  bucket = "other"`, "versioning"},
		{"AES256", `"aws:kms"`, `"AES256"`, "aws:kms"},
		{"one public flag off", "restrict_public_buckets = true", "restrict_public_buckets = false", "public access block"},
		{"no noncurrent expiry", "noncurrent_version_expiration {", "noncurrent_version_transition {", "lifecycle"},
		{"no multipart abort", "abort_incomplete_multipart_upload {", "transition {", "lifecycle"},
		{"replication to nowhere", `default = ["arn:aws:s3:::c"]`, `default = []`, "replication"},
		{"replication disabled", `content {
      status = "Enabled"`, `content {
      status = "Disabled"`, "replication"},
		{"replication of another bucket", `resource "aws_s3_bucket_replication_configuration" "b" {
  bucket = aws_s3_bucket.b.id`, `resource "aws_s3_bucket_replication_configuration" "b" {
  bucket = "someone-else"`, "replication"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(goodBucket, tc.old, tc.new, 1)
			if src == goodBucket {
				t.Fatalf("the snippet does not contain %q", tc.old)
			}
			expectProblem(t, checkBuckets(snippet(t, src)), tc.want)
		})
	}
}

func expectProblem(t *testing.T, problems []string, want string) {
	t.Helper()
	for _, p := range problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Errorf("no problem mentions %q; got %q", want, problems)
}

const securityGroups = `
variable "clients" {
  type    = list(string)
  default = ["0.0.0.0/0"]
}
resource "aws_security_group" "alb" {
  name = "alb"
}
resource "aws_security_group" "api" {
  name = "api"
}
resource "aws_lb" "api" {
  security_groups = [aws_security_group.alb.id]
}
resource "aws_vpc_security_group_ingress_rule" "alb" {
  for_each          = toset(var.clients)
  security_group_id = aws_security_group.alb.id
  cidr_ipv4         = each.value
}
`

func TestOpenRuleCheckerCatchesViolations(t *testing.T) {
	if p := checkOpenRules(snippet(t, securityGroups)); len(p) != 0 {
		t.Fatalf("the load balancer's open rule was reported: %v", p)
	}
	for _, tc := range []struct{ name, extra, want string }{
		{"literal IPv4 rule", `
resource "aws_vpc_security_group_ingress_rule" "api" {
  security_group_id = aws_security_group.api.id
  cidr_ipv4         = "0.0.0.0/0"
}`, "0.0.0.0/0"},
		{"IPv6 egress rule", `
resource "aws_vpc_security_group_egress_rule" "api" {
  security_group_id = aws_security_group.api.id
  cidr_ipv6         = "::/0"
}`, "::/0"},
		{"open through a variable's default", `
resource "aws_vpc_security_group_ingress_rule" "api" {
  for_each          = toset(var.clients)
  security_group_id = aws_security_group.api.id
  cidr_ipv4         = each.value
}`, "0.0.0.0/0"},
		{"legacy rule resource", `
resource "aws_security_group_rule" "api" {
  type              = "ingress"
  security_group_id = aws_security_group.api.id
  cidr_blocks       = ["10.0.0.0/8", "0.0.0.0/0"]
}`, "0.0.0.0/0"},
		{"inline ingress", `
resource "aws_security_group" "view" {
  ingress {
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = var.clients
  }
}`, "aws_security_group.view"},
		{"dynamic inline ingress", `
resource "aws_security_group" "view" {
  dynamic "ingress" {
    for_each = var.clients
    content {
      cidr_blocks = [ingress.value]
    }
  }
}`, "aws_security_group.view"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectProblem(t, checkOpenRules(snippet(t, securityGroups+tc.extra)), tc.want)
		})
	}
}

func TestVariableCheckerCatchesViolations(t *testing.T) {
	in := snippet(t, `
variable "good" {
  description = "Documented."
  type        = string
}
variable "untyped" {
  description = "No type."
}
variable "undocumented" {
  type = number
}
variable "blank" {
  description = " "
  type        = number
}
`)
	problems := checkVariables(in.mod)
	expectProblem(t, problems, `"untyped" has no type`)
	expectProblem(t, problems, `"undocumented" has no description`)
	expectProblem(t, problems, `"blank" has no description`)
	if len(problems) != 3 {
		t.Errorf("want 3 problems, got %q", problems)
	}
}

func TestModuleFilesCheckerCatchesViolations(t *testing.T) {
	m, err := parseModule("bare", map[string][]byte{"main.tf": nil, "variables.tf": nil, "README.md": nil})
	if err != nil {
		t.Fatal(err)
	}
	problems := checkModuleFiles(m)
	expectProblem(t, problems, "no versions.tf")
	expectProblem(t, problems, "no outputs.tf")
	if len(problems) != 2 {
		t.Errorf("want 2 problems, got %q", problems)
	}
}

func TestProviderWiringCheckerCatchesViolations(t *testing.T) {
	const src = `
variable "regions" {
  type    = list(string)
  default = ["us-east-1", "us-west-2", "eu-west-1"]
}
provider "aws" {
  alias  = "a"
  region = var.regions[0]
}
provider "aws" {
  alias  = "b"
  region = var.regions[1]
}
module "region_a" {
  source    = "./modules/region"
  providers = { aws = aws.a }
  region    = var.regions[0]
}
module "region_b" {
  source    = "./modules/region"
  providers = { aws = aws.b }
  region    = var.regions[1]
}
`
	if p := checkProviderWiring(snippet(t, src)); len(p) != 0 {
		t.Fatalf("good wiring reported: %v", p)
	}
	expectProblem(t, checkProviderWiring(snippet(t, strings.Replace(src, "region    = var.regions[1]", "region    = var.regions[2]", 1))), "its provider aws.b")
	expectProblem(t, checkProviderWiring(snippet(t, strings.Replace(src, "{ aws = aws.b }", "{ aws = aws.a }", 1))), "share the provider")
	expectProblem(t, checkProviderWiring(snippet(t, strings.Replace(src, "{ aws = aws.b }", "{ aws = aws.c }", 1))), "not given an aliased aws provider")
}

func TestTopologyCheckerCatchesViolations(t *testing.T) {
	tile := func(n int, replicas int, space string) []viewGroup {
		var gs []viewGroup
		for p := range n {
			start := new(big.Int).Div(new(big.Int).Mul(big.NewInt(int64(p)), hashSpaceSize), big.NewInt(int64(n)))
			end := new(big.Int).Div(new(big.Int).Mul(big.NewInt(int64(p+1)), hashSpaceSize), big.NewInt(int64(n)))
			gs = append(gs, viewGroup{key: fmt.Sprintf("%s-%d", space, p), space: space, start: start, end: end, minSize: replicas})
		}
		return gs
	}
	build := func(voters []int, replicas int) []regionLayout {
		names := []string{"us-east-1", "us-west-2", "eu-west-1"}
		var rs []regionLayout
		for i, n := range voters {
			r := regionLayout{module: fmt.Sprintf("region_%d", i), region: names[i], vpcCIDR: fmt.Sprintf("10.%d.0.0/16", i)}
			for j := range n {
				r.voters = append(r.voters, voter{id: fmt.Sprintf("%s-log-%d", names[i], j), ip: fmt.Sprintf("10.%d.0.%d", i, 10+j)})
			}
			r.views = append(tile(3, replicas, "HashSP"), tile(3, replicas, "HashPO")...)
			for _, other := range names[:len(voters)] {
				if other != names[i] {
					r.replicatesTo = append(r.replicatesTo, other)
				}
			}
			rs = append(rs, r)
		}
		return rs
	}
	if p := checkTopology(build([]int{2, 2, 1}, 2)); len(p) != 0 {
		t.Fatalf("a good topology has problems: %v", p)
	}
	expectProblem(t, checkTopology(build([]int{2, 1, 1}, 2)), "below the Raft majority")
	expectProblem(t, checkTopology(build([]int{1, 1, 1}, 1)), "runs 1 views, want at least 2")
	expectProblem(t, checkTopology(build([]int{1, 1}, 2)), "2 regions, want 3")

	gap := build([]int{1, 1, 1}, 2)
	gap[0].views = gap[0].views[1:] // HashSP no longer starts at 0
	expectProblem(t, checkTopology(gap), "do not tile")

	short := build([]int{1, 1, 1}, 2)
	short[1].views[2].end = new(big.Int).Sub(hashSpaceSize, big.NewInt(1))
	expectProblem(t, checkTopology(short), "not 2^64")

	noPO := build([]int{1, 1, 1}, 2)
	noPO[2].views = noPO[2].views[:3]
	expectProblem(t, checkTopology(noPO), "no views of space HashPO")

	lonely := build([]int{1, 1, 1}, 2)
	lonely[0].replicatesTo = lonely[0].replicatesTo[:1]
	expectProblem(t, checkTopology(lonely), "does not replicate to")

	stray := build([]int{1, 1, 1}, 2)
	stray[0].voters[0].ip = "192.168.0.1"
	expectProblem(t, checkTopology(stray), "is not in")
}

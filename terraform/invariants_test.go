package terraform

// The deployment invariants of issue 15, checked on the real layout and,
// to show each checker fails when the layout breaks, on mutated copies of
// it (TestInvariantCheckersCatchMutations): a copy of terraform/ with one
// string of one file replaced.
//
//  7. no bucket receives replication into a prefix that it writes itself;
//  8. every role's IAM policy names only its own keys of the bucket, and
//     only the pruner may delete;
//  9. every role has a unit in the release (deploy/systemd);
// 10. the truncator and the pruner run in every region, each a singleton;
// 11. health checks point at readiness: target groups at /readyz on the
//     servers' HTTP listener, Route 53 at the region's verdict
//     (/verdict/fully-available), and no autoscaling group replaces
//     instances for failing readiness;
// 12. the CloudWatch alarms mirror deploy/prometheus/alerts.yml, and the
//     CloudWatch agent ships every metric they use.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"gopkg.in/yaml.v3"
)

// ---------------------------------------------------------------------------
// Symbolic evaluation: a resource attribute such as aws_s3_bucket.this.arn
// evaluates to the string "aws_s3_bucket.this.arn", so that policies built
// from ARNs can be read offline.

func symEval(ctx *hcl.EvalContext, expr hcl.Expression) (cty.Value, hcl.Diagnostics) {
	attrs := map[string]map[string]map[string]cty.Value{}
	opaque := map[string]bool{}
	for _, tr := range expr.Variables() {
		root := tr.RootName()
		if defined(ctx, root) {
			continue
		}
		var name, attr string
		if len(tr) == 3 {
			a1, ok1 := tr[1].(hcl.TraverseAttr)
			a2, ok2 := tr[2].(hcl.TraverseAttr)
			if ok1 && ok2 {
				name, attr = a1.Name, a2.Name
			}
		}
		if name == "" || !strings.HasPrefix(root, "aws_") {
			opaque[root] = true
			continue
		}
		if attrs[root] == nil {
			attrs[root] = map[string]map[string]cty.Value{}
		}
		if attrs[root][name] == nil {
			attrs[root][name] = map[string]cty.Value{}
		}
		attrs[root][name][attr] = cty.StringVal(root + "." + name + "." + attr)
	}
	child := ctx.NewChild()
	child.Variables = map[string]cty.Value{}
	for root := range opaque {
		child.Variables[root] = cty.DynamicVal
	}
	for root, names := range attrs {
		if opaque[root] {
			continue
		}
		obj := map[string]cty.Value{}
		for name, as := range names {
			obj[name] = cty.ObjectVal(as)
		}
		child.Variables[root] = cty.ObjectVal(obj)
	}
	return expr.Value(child)
}

func symAttr(s scope, name string) cty.Value {
	a, ok := s.body.Attributes[name]
	if !ok {
		return cty.DynamicVal
	}
	v, diags := symEval(s.ctx, a.Expr)
	if diags.HasErrors() {
		return cty.DynamicVal
	}
	return v
}

// strings returns v's strings, and false if v is not wholly known.
func stringsOf(v cty.Value) ([]string, bool) {
	if s, ok := str(v); ok {
		return []string{s}, true
	}
	if !v.IsWhollyKnown() || v.IsNull() || !v.CanIterateElements() {
		return nil, false
	}
	var out []string
	for _, kv := range pairs(v) {
		s, ok := str(kv[1])
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func (in *instance) dataOf(typ, name string) *resource {
	for _, d := range in.mod.data {
		if d.typ == typ && d.name == name {
			return d
		}
	}
	return nil
}

// eachKey is the for_each key of a scope, "" without one.
func eachKey(s scope) string {
	for c := s.ctx; c != nil; c = c.Parent() {
		if e, ok := c.Variables["each"]; ok {
			k, _ := str(e.GetAttr("key"))
			return k
		}
	}
	return ""
}

// regionInstances are the region modules a root instance deploys.
func regionInstances(root *instance, all []*instance) []*instance {
	var out []*instance
	for _, c := range regionCalls(root) {
		for _, in := range all {
			if in.path == root.path+"/module."+c.name {
				out = append(out, in)
			}
		}
	}
	return out
}

func child(in *instance, all []*instance, name string) *instance {
	for _, c := range all {
		if c.path == in.path+"/module."+name {
			return c
		}
	}
	return nil
}

func roots(all []*instance) []*instance {
	var out []*instance
	for _, in := range all {
		if in.mod.dir == "." {
			out = append(out, in)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// 8. IAM: the keys of the bucket each role may touch. This is the table of
// terraform/README.md ("Which process writes which key where"), written
// here independently of iam.tf on purpose: the check compares the two.

type access struct{ read, write, delete []string }

var roleAccess = map[string]access{
	"log": {
		read:  []string{"log/*", "checkpoints/catalog.json", "akutan-bucket.json"},
		write: []string{"log/*", "checkpoints/catalog.json", "akutan-bucket.json"},
	},
	"view": {
		read:  []string{"log/*", "checkpoints/*", "akutan-bucket.json"},
		write: []string{"checkpoints/*"},
	},
	"api": {},
	"truncator": {
		read:  []string{"log/catalog.json", "checkpoints/*", "clusters.json", "akutan-bucket.json", "akutan-clock"},
		write: []string{"akutan-clock"},
	},
	"pruner": {
		read:   []string{"log/*", "checkpoints/*", "clusters.json", "akutan-bucket.json", "akutan-clock"},
		write:  []string{"log/*", "checkpoints/*", "akutan-clock"},
		delete: []string{"log/*", "checkpoints/*"},
	},
}

const dataBucket = "aws_s3_bucket.this.arn"

// actionKind sorts an S3 action into read, write or delete ("" for the
// rest); wildcards count as every kind they cover.
func actionKinds(action string) []string {
	a := strings.ToLower(action)
	switch {
	case a == "*" || a == "s3:*":
		return []string{"read", "write", "delete"}
	case strings.HasPrefix(a, "s3:delete"):
		return []string{"delete"}
	case strings.HasPrefix(a, "s3:put") || a == "s3:abortmultipartupload" || a == "s3:restoreobject":
		return []string{"write"}
	case strings.HasPrefix(a, "s3:get"):
		return []string{"read"}
	}
	if strings.HasPrefix(a, "s3:") && strings.Contains(a, "*") {
		return []string{"read", "write", "delete"}
	}
	return nil
}

// checkRoleAccess: the role policies (data.aws_iam_policy_document.role,
// one per role) grant exactly the roles of roleAccess, each only its own
// keys of the data bucket, and only the pruner deletes. Every other policy
// document of the module may not delete from the data bucket either.
func checkRoleAccess(in *instance) []string {
	var problems []string
	report := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: ", in.path)+fmt.Sprintf(format, args...))
	}
	doc := in.dataOf("aws_iam_policy_document", "role")
	if doc == nil {
		return []string{in.path + ": no data.aws_iam_policy_document.role (the per-role policies)"}
	}
	seen := map[string]bool{}
	for _, d := range in.mod.data {
		if d.typ != "aws_iam_policy_document" {
			continue
		}
		for _, s := range in.scopes(d) {
			role := eachKey(s)
			if d == doc {
				if role == "" {
					report("the role policies' for_each is not known offline")
					continue
				}
				seen[role] = true
				if _, ok := roleAccess[role]; !ok {
					report("role %q has a policy but no entry in the README's key table (roleAccess)", role)
					continue
				}
			}
			for _, st := range nested(s, "statement") {
				if isString(symAttr(st, "effect"), "Deny") {
					continue
				}
				actions, ok1 := stringsOf(symAttr(st, "actions"))
				resources, ok2 := stringsOf(symAttr(st, "resources"))
				var kinds []string
				for _, a := range actions {
					kinds = append(kinds, actionKinds(a)...)
				}
				if !ok1 {
					report("data.%s.%s[%q]: a statement's actions are not known offline", d.typ, d.name, role)
					continue
				}
				if len(kinds) == 0 {
					continue
				}
				if !ok2 {
					report("data.%s.%s[%q]: a statement granting %v has resources not known offline", d.typ, d.name, role, actions)
					continue
				}
				for _, r := range resources {
					key, inBucket := strings.CutPrefix(r, dataBucket+"/")
					if r == "*" {
						key, inBucket = "*", true
					}
					if !inBucket {
						continue
					}
					for _, kind := range kinds {
						if d != doc {
							if kind == "delete" {
								report("data.%s.%s grants %v on %s: only the pruner's role may delete", d.typ, d.name, actions, r)
							}
							continue
						}
						allowed := map[string][]string{"read": roleAccess[role].read, "write": roleAccess[role].write, "delete": roleAccess[role].delete}[kind]
						if !contains(allowed, key) {
							if kind == "delete" && role != "pruner" {
								report("role %s may delete %s: only the pruner may delete", role, key)
							} else {
								report("role %s may %s %s, which is not its own (README: %v)", role, kind, key, allowed)
							}
						}
					}
				}
			}
		}
	}
	for _, role := range sortedKeys(roleAccess) {
		if !seen[role] {
			report("role %s has no policy", role)
		}
	}
	return problems
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// 7. Replication never writes under a prefix the destination bucket writes.

type replRule struct {
	prefix string // "" replicates every key
	to     string // destination region
}

type bucketFlow struct {
	region string
	writes []string // key patterns the region's roles write
	rules  []replRule
}

// flowsOf reads, for each region of a root instance, what its roles write
// into its bucket (the IAM table the policies are built from) and what its
// replication rules send where.
func flowsOf(root *instance, all []*instance) ([]bucketFlow, []string) {
	var out []bucketFlow
	var problems []string
	for _, in := range regionInstances(root, all) {
		f := bucketFlow{}
		f.region, _ = str(in.ctx.Variables["var"].GetAttr("region"))
		ba := in.ctx.Variables["local"].GetAttr("bucket_access")
		if !ba.IsWhollyKnown() {
			problems = append(problems, in.path+": local.bucket_access is not known offline")
			continue
		}
		for _, kv := range pairs(ba) {
			w, _ := stringsOf(kv[1].GetAttr("write"))
			f.writes = append(f.writes, w...)
		}
		for _, r := range in.resourcesOf("aws_s3_bucket_replication_configuration") {
			for _, s := range in.scopes(r) {
				for _, rule := range nested(s, "rule") {
					if !isString(evalAttr(rule.ctx, rule.body, "status"), "Enabled") {
						continue
					}
					prefix, known := "", true
					if p, ok := rule.body.Attributes["prefix"]; ok { // the deprecated form
						v, _ := eval(rule.ctx, p.Expr)
						prefix, known = str(v)
					}
					for _, fl := range nested(rule, "filter") {
						if _, ok := fl.body.Attributes["prefix"]; ok {
							prefix, known = str(evalAttr(fl.ctx, fl.body, "prefix"))
						}
						for _, and := range nested(fl, "and") {
							if _, ok := and.body.Attributes["prefix"]; ok {
								prefix, known = str(evalAttr(and.ctx, and.body, "prefix"))
							}
						}
					}
					// The destination's region: the rule's iterator element
					// (replication_destinations) names it.
					to := ""
					if it, ok := rule.ctx.Variables["rule"]; ok && it.IsKnown() && !it.IsNull() {
						if v := it.GetAttr("value"); v.IsKnown() && !v.IsNull() && v.Type().IsObjectType() && v.Type().HasAttribute("region") {
							to, _ = str(v.GetAttr("region"))
						}
					}
					if !known || to == "" {
						problems = append(problems, fmt.Sprintf("%s: a replication rule's prefix or destination region is not known offline", in.path))
						continue
					}
					f.rules = append(f.rules, replRule{prefix: prefix, to: to})
				}
			}
		}
		out = append(out, f)
	}
	return out, problems
}

// overlaps: some key matches both the replication prefix and the pattern.
func overlaps(prefix, pattern string) bool {
	stem := strings.TrimSuffix(pattern, "*")
	return strings.HasPrefix(stem, prefix) || (strings.HasSuffix(pattern, "*") && strings.HasPrefix(prefix, stem))
}

func checkReplication(flows []bucketFlow) []string {
	byRegion := map[string]bucketFlow{}
	for _, f := range flows {
		byRegion[f.region] = f
	}
	var problems []string
	for _, f := range flows {
		for _, r := range f.rules {
			dst, ok := byRegion[r.to]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s replicates to %s, which is no region of the layout", f.region, r.to))
				continue
			}
			var hit []string
			for _, w := range dst.writes {
				if overlaps(r.prefix, w) && !contains(hit, w) {
					hit = append(hit, w)
				}
			}
			if len(hit) > 0 {
				sort.Strings(hit)
				problems = append(problems, fmt.Sprintf("%s replicates prefix %q into %s's bucket, which writes %s itself", f.region, r.prefix, r.to, strings.Join(hit, ", ")))
			}
		}
	}
	return problems
}

// knownOpenReplication: today every bucket replicates everything (prefix
// "") to the others. That is issue 15's open "one writer per object"
// rework (terraform/README.md), which needs per-region prefixes that the
// servers write under. Until it lands, exactly these problems are known;
// any other fails the test, and so does their disappearance, so that this
// allowance goes when the rework lands.
func knownOpenReplication(p string) bool { return strings.Contains(p, `replicates prefix ""`) }

// ---------------------------------------------------------------------------
// 9. Every role has a unit in the release.

// rolesOf collects every role a region deploys: the IAM roles, the daemon
// groups, the akutan:role tags of the groups and instances, and what
// modules/server-config renders.
func rolesOf(in *instance, all []*instance) ([]string, []string) {
	roles := map[string]bool{}
	var problems []string
	if ba := in.ctx.Variables["local"].GetAttr("bucket_access"); ba.IsWhollyKnown() {
		for _, kv := range pairs(ba) {
			roles[kv[0].AsString()] = true
		}
	}
	for _, typ := range []string{"aws_autoscaling_group", "aws_instance"} {
		for _, r := range in.resourcesOf(typ) {
			for _, s := range in.scopes(r) {
				tags := nested(s, "tag")
				for _, t := range tags {
					if isString(evalAttr(t.ctx, t.body, "key"), "akutan:role") {
						if v, ok := str(evalAttr(t.ctx, t.body, "value")); ok {
							roles[v] = true
						} else {
							problems = append(problems, fmt.Sprintf("%s: %s: akutan:role tag not known offline", in.path, r.addr()))
						}
					}
				}
				if m := evalAttr(s.ctx, s.body, "tags"); m.IsWhollyKnown() && !m.IsNull() && m.Type().IsObjectType() && m.Type().HasAttribute("akutan:role") {
					if v, ok := str(m.GetAttr("akutan:role")); ok {
						roles[v] = true
					}
				}
			}
		}
	}
	if sc := child(in, all, "servers"); sc != nil {
		rs := sc.ctx.Variables["local"].GetAttr("roles")
		if !rs.IsWhollyKnown() {
			problems = append(problems, sc.path+": local.roles (what the servers run) is not known offline")
		} else {
			for _, kv := range pairs(rs) {
				roles[kv[1].AsString()] = true
			}
		}
	} else {
		problems = append(problems, in.path+": no module.servers (modules/server-config)")
	}
	return sortedKeys(roles), problems
}

// checkUnits: each role has deploy/systemd/akutan-ROLE.service, which reads
// /etc/akutan/ROLE.env and runs a binary of the release.
func checkUnits(roles []string, unitDir string) []string {
	var problems []string
	for _, role := range roles {
		name := "akutan-" + role + ".service"
		data, err := os.ReadFile(filepath.Join(unitDir, name))
		if err != nil {
			problems = append(problems, fmt.Sprintf("role %s has no unit in the release (deploy/systemd/%s)", role, name))
			continue
		}
		text := string(data)
		if !strings.Contains(text, "\nEnvironmentFile=/etc/akutan/"+role+".env\n") {
			problems = append(problems, fmt.Sprintf("deploy/systemd/%s does not read /etc/akutan/%s.env", name, role))
		}
		if !strings.Contains(text, "\nExecStart=/usr/local/bin/") {
			problems = append(problems, fmt.Sprintf("deploy/systemd/%s runs no binary of the release", name))
		}
	}
	return problems
}

// ---------------------------------------------------------------------------
// 10. The daemons run in every region, each a singleton.

var daemons = []string{"truncator", "pruner"}

func checkDaemons(root *instance, all []*instance) []string {
	var problems []string
	regions := regionInstances(root, all)
	if len(regions) == 0 {
		return []string{root.path + ": no region modules"}
	}
	for _, in := range regions {
		found := map[string]int{}
		for _, r := range in.resourcesOf("aws_autoscaling_group") {
			for _, s := range in.scopes(r) {
				role := eachKey(s)
				for _, t := range nested(s, "tag") {
					if isString(evalAttr(t.ctx, t.body, "key"), "akutan:role") {
						if v, ok := str(evalAttr(t.ctx, t.body, "value")); ok {
							role = v
						}
					}
				}
				if !contains(daemons, role) {
					continue
				}
				found[role]++
				for _, attr := range []string{"min_size", "max_size", "desired_capacity"} {
					if n, ok := asInt(evalAttr(s.ctx, s.body, attr)); !ok || n != 1 {
						problems = append(problems, fmt.Sprintf("%s: %s %s: %s is not 1: the daemon must be a singleton", in.path, r.addr(), role, attr))
					}
				}
			}
		}
		for _, d := range daemons {
			if found[d] != 1 {
				problems = append(problems, fmt.Sprintf("%s: %d autoscaling groups run the %s, want 1", in.path, found[d], d))
			}
		}
	}
	return problems
}

// ---------------------------------------------------------------------------
// 11. Health checks point at readiness.

const verdictPath = "/verdict/fully-available"

func checkHealth(in *instance) []string {
	var problems []string
	report := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: ", in.path)+fmt.Sprintf(format, args...))
	}
	httpPort := ""
	if ports := in.ctx.Variables["var"].GetAttr("ports"); ports.IsWhollyKnown() && !ports.IsNull() {
		if n, ok := asInt(ports.GetAttr("http")); ok {
			httpPort = strconv.Itoa(n)
		}
	}
	tgs := 0
	for _, r := range in.resourcesOf("aws_lb_target_group") {
		for _, s := range in.scopes(r) {
			tgs++
			// An ALB's gRPC health check matches only the gRPC status code,
			// which Health/Check sets to OK whether SERVING or not.
			if isString(evalAttr(s.ctx, s.body, "protocol_version"), "GRPC") {
				report("%s: gRPC health checks see liveness only (Health/Check answers OK when NOT_SERVING)", r.addr())
			}
			hcs := nested(s, "health_check")
			if len(hcs) != 1 {
				report("%s: no health_check block", r.addr())
				continue
			}
			hc := hcs[0]
			if !isString(evalAttr(hc.ctx, hc.body, "protocol"), "HTTP", "HTTPS") {
				report("%s: health check protocol is not HTTP", r.addr())
			}
			if !isString(evalAttr(hc.ctx, hc.body, "path"), "/readyz") {
				report("%s: health check path is not /readyz", r.addr())
			}
			if port, ok := str(evalAttr(hc.ctx, hc.body, "port")); !ok || httpPort == "" || port != httpPort {
				report("%s: health check port %q is not the servers' HTTP listener (%s)", r.addr(), port, httpPort)
			}
			if !isString(evalAttr(hc.ctx, hc.body, "matcher"), "200") {
				report("%s: health check matcher is not 200", r.addr())
			}
		}
	}
	checks := 0
	for _, r := range in.resourcesOf("aws_route53_health_check") {
		for _, s := range in.scopes(r) {
			checks++
			if !isString(evalAttr(s.ctx, s.body, "type"), "HTTP", "HTTPS") || !isString(evalAttr(s.ctx, s.body, "resource_path"), verdictPath) {
				report("%s: Route 53 does not check the region's verdict (%s over HTTP(S))", r.addr(), verdictPath)
			}
		}
	}
	for _, r := range in.resourcesOf("aws_route53_record") {
		routed := len(r.body.Blocks) > 0 && (len(nested(scope{r.body, in.ctx}, "latency_routing_policy")) > 0 || len(nested(scope{r.body, in.ctx}, "failover_routing_policy")) > 0)
		if routed && !refersTo(r.body, "health_check_id", "aws_route53_health_check."+firstHealthCheck(in)) {
			report("%s: routed between regions without the verdict health check", r.addr())
		}
	}
	for _, r := range in.resourcesOf("aws_autoscaling_group") {
		if _, ok := r.body.Attributes["target_group_arns"]; !ok {
			continue
		}
		for _, s := range in.scopes(r) {
			if isString(evalAttr(s.ctx, s.body, "health_check_type"), "ELB") {
				report("%s: health_check_type ELB replaces servers that are only not ready (a region not fully available would lose every API server)", r.addr())
			}
		}
	}
	if in.mod.dir == "modules/region" && (tgs == 0 || checks == 0) {
		report("%d target groups and %d Route 53 health checks: the checker checked nothing", tgs, checks)
	}
	return problems
}

func firstHealthCheck(in *instance) string {
	for _, r := range in.resourcesOf("aws_route53_health_check") {
		return r.name
	}
	return ""
}

// ---------------------------------------------------------------------------
// 12. The CloudWatch alarms mirror the Prometheus rules.

type promRule struct {
	Alert string `yaml:"alert"`
	Expr  string `yaml:"expr"`
	For   string `yaml:"for"`
}

func loadRules(t *testing.T, file string) map[string]promRule {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []promRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	out := map[string]promRule{}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out[r.Alert] = r
			}
		}
	}
	return out
}

// mirroredAlerts must have an alarm in every region.
var mirroredAlerts = []string{"AkutanArchiveLag", "AkutanViewLag", "AkutanClusterNotFullyAvailable", "AkutanClusterNotHealthy"}

var (
	ruleThreshold = regexp.MustCompile(`(<|>)\s*([0-9.eE+]+)\s*$`)
	comparisons   = map[string]string{">": "GreaterThanThreshold", "<": "LessThanThreshold"}
)

func checkAlarms(in *instance, all []*instance, rules map[string]promRule) []string {
	var problems []string
	report := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s: ", in.path)+fmt.Sprintf(format, args...))
	}
	// What the CloudWatch agent ships: selector regexps and dimensions.
	type shipped struct {
		selectors []*regexp.Regexp
		dims      [][]string
	}
	var ships []shipped
	if sc := child(in, all, "servers"); sc != nil {
		decls := sc.ctx.Variables["local"].GetAttr("metric_declarations")
		if !decls.IsWhollyKnown() {
			report("module.servers: local.metric_declarations is not known offline")
		} else {
			for _, role := range pairs(decls) {
				for _, d := range pairs(role[1]) {
					var sh shipped
					sels, _ := stringsOf(d[1].GetAttr("metric_selectors"))
					for _, s := range sels {
						if re, err := regexp.Compile(s); err == nil {
							sh.selectors = append(sh.selectors, re)
						}
					}
					for _, ds := range pairs(d[1].GetAttr("dimensions")) {
						dim, _ := stringsOf(ds[1])
						sh.dims = append(sh.dims, dim)
					}
					ships = append(ships, sh)
				}
			}
		}
	}
	mirrored := map[string]bool{}
	for _, r := range in.resourcesOf("aws_cloudwatch_metric_alarm") {
		for _, s := range in.scopes(r) {
			tags := evalAttr(s.ctx, s.body, "tags")
			alert := ""
			if tags.IsWhollyKnown() && !tags.IsNull() && tags.Type().IsObjectType() && tags.Type().HasAttribute("akutan:alert") {
				alert, _ = str(tags.GetAttr("akutan:alert"))
			}
			if alert == "" {
				report("%s: no akutan:alert tag naming the Prometheus rule it mirrors", r.addr())
				continue
			}
			rule, ok := rules[alert]
			if !ok {
				report("%s: mirrors %s, which is no rule of deploy/prometheus/alerts.yml", r.addr(), alert)
				continue
			}
			mirrored[alert] = true
			metric, _ := str(evalAttr(s.ctx, s.body, "metric_name"))
			if metric == "" || !regexp.MustCompile(`\b`+regexp.QuoteMeta(metric)+`\b`).MatchString(rule.Expr) {
				report("%s (%s): metric %q is not the rule's (%s)", r.addr(), alert, metric, strings.TrimSpace(rule.Expr))
			}
			m := ruleThreshold.FindStringSubmatch(strings.TrimSpace(rule.Expr))
			if m == nil {
				report("%s (%s): the rule %q has no trailing comparison to mirror", r.addr(), alert, rule.Expr)
				continue
			}
			want, _ := strconv.ParseFloat(m[2], 64)
			if !isString(evalAttr(s.ctx, s.body, "comparison_operator"), comparisons[m[1]]) {
				report("%s (%s): comparison is not %s (%s)", r.addr(), alert, comparisons[m[1]], m[1])
			}
			if th := evalAttr(s.ctx, s.body, "threshold"); !th.IsWhollyKnown() || th.IsNull() || th.Type() != cty.Number {
				report("%s (%s): threshold not known offline", r.addr(), alert)
			} else if got, _ := th.AsBigFloat().Float64(); got != want {
				report("%s (%s): threshold %v, the rule's is %v", r.addr(), alert, got, want)
			}
			forDur, err := time.ParseDuration(rule.For)
			if rule.For == "" {
				forDur, err = 0, nil
			}
			period, ok1 := asInt(evalAttr(s.ctx, s.body, "period"))
			periods, ok2 := asInt(evalAttr(s.ctx, s.body, "evaluation_periods"))
			wantPeriods := max(1, int((forDur+time.Duration(period)*time.Second-1)/(time.Duration(max(period, 1))*time.Second)))
			if err != nil || !ok1 || !ok2 || periods != wantPeriods {
				report("%s (%s): %d periods of %ds do not mirror the rule's for: %s", r.addr(), alert, periods, period, rule.For)
			}
			dims := evalAttr(s.ctx, s.body, "dimensions")
			var dimKeys []string
			if dims.IsWhollyKnown() && !dims.IsNull() && dims.CanIterateElements() {
				for _, kv := range pairs(dims) {
					dimKeys = append(dimKeys, kv[0].AsString())
				}
			}
			sort.Strings(dimKeys)
			shippedOK := false
			for _, sh := range ships {
				for _, re := range sh.selectors {
					if !re.MatchString(metric) {
						continue
					}
					for _, d := range sh.dims {
						d = append([]string(nil), d...)
						sort.Strings(d)
						shippedOK = shippedOK || strings.Join(d, ",") == strings.Join(dimKeys, ",")
					}
				}
			}
			if !shippedOK {
				report("%s (%s): the CloudWatch agent ships no %s with dimensions %v (modules/server-config metric_declarations)", r.addr(), alert, metric, dimKeys)
			}
		}
	}
	for _, a := range mirroredAlerts {
		if !mirrored[a] {
			report("no CloudWatch alarm mirrors %s", a)
		}
	}
	return problems
}

// ---------------------------------------------------------------------------
// The checks on the real layout.

const (
	unitDir   = "../deploy/systemd"
	rulesFile = "../deploy/prometheus/alerts.yml"
)

// invariantProblems runs every check of this file on the layout at dir.
// Replication problems that knownOpen accepts are returned apart.
func invariantProblems(t *testing.T, dir string) (problems, known []string) {
	t.Helper()
	l, err := loadLayout(dir)
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	all, ps := l.instances()
	problems = append(problems, ps...)
	rules := loadRules(t, rulesFile)
	rs := roots(all)
	if len(rs) == 0 {
		t.Fatalf("%s: no root module instance", dir)
	}
	for _, root := range rs {
		flows, ps := flowsOf(root, all)
		problems = append(problems, ps...)
		for _, p := range checkReplication(flows) {
			if knownOpenReplication(p) {
				known = append(known, root.path+": "+p)
			} else {
				problems = append(problems, root.path+": "+p)
			}
		}
		problems = append(problems, checkDaemons(root, all)...)
		regions := regionInstances(root, all)
		if len(regions) != 3 {
			problems = append(problems, fmt.Sprintf("%s: %d region modules", root.path, len(regions)))
		}
		for _, in := range regions {
			problems = append(problems, checkRoleAccess(in)...)
			roles, ps := rolesOf(in, all)
			problems = append(problems, ps...)
			for _, want := range sortedKeys(roleAccess) {
				if !contains(roles, want) {
					problems = append(problems, fmt.Sprintf("%s: role %s is not deployed", in.path, want))
				}
			}
			for _, p := range checkUnits(roles, unitDir) {
				problems = append(problems, in.path+": "+p)
			}
			problems = append(problems, checkHealth(in)...)
			problems = append(problems, checkAlarms(in, all, rules)...)
		}
	}
	return problems, known
}

func TestInvariants(t *testing.T) {
	problems, known := invariantProblems(t, ".")
	reportAll(t, problems)
	for _, k := range known {
		t.Logf("known open (issue 15, one writer per object): %s", k)
	}
	if len(known) == 0 {
		t.Error("no full-bucket replication is left: the one-writer-per-object rework landed, so remove knownOpenReplication")
	}
}

// ---------------------------------------------------------------------------
// Each checker fails on a broken layout: a copy of terraform/ with one
// mutation.

// mutatedCopy copies the layout's files (not hidden directories) into a
// temporary directory and replaces old with new in file: every occurrence,
// of which there must be at least one.
func mutatedCopy(t *testing.T, file, old, new string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, p), 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if filepath.ToSlash(p) == file {
			text := string(data)
			if !strings.Contains(text, old) {
				return fmt.Errorf("%s does not contain %q", file, old)
			}
			data = []byte(strings.ReplaceAll(text, old, new))
		}
		return os.WriteFile(filepath.Join(dst, p), data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestInvariantCheckersCatchMutations(t *testing.T) {
	for _, tc := range []struct {
		name, file, old, new string
		want                 string // a problem containing this
		noKnown              bool   // the known-open replication problems are gone
	}{
		// 7. replication
		{name: "replication into a prefix the destination writes", file: "modules/region/storage.tf",
			old: "      filter {}\n", new: "      filter {\n        prefix = \"checkpoints/\"\n      }\n",
			want: `replicates prefix "checkpoints/" into`},
		{name: "replication of a prefix nobody writes", file: "modules/region/storage.tf",
			old: "      filter {}\n", new: "      filter {\n        prefix = \"replicas/\"\n      }\n", noKnown: true},
		// 8. IAM
		{name: "view writes the log archive", file: "modules/region/iam.tf",
			old: `write  = ["checkpoints/*"]`, new: `write  = ["checkpoints/*", "log/*"]`, want: "role view may write log/*"},
		{name: "log deletes", file: "modules/region/iam.tf",
			old: "      delete = []\n    }\n    view", new: "      delete = [\"log/*\"]\n    }\n    view", want: "role log may delete log/*: only the pruner may delete"},
		{name: "truncator gets s3:*", file: "modules/region/iam.tf",
			old: `actions   = ["s3:GetObject"]
      resources = [for k in each.value.read`, new: `actions   = ["s3:*"]
      resources = [for k in each.value.read`, want: "role truncator may delete"},
		{name: "pruner deletes the whole bucket", file: "modules/region/iam.tf",
			old: `delete = ["log/*", "checkpoints/*"]`, new: `delete = ["*"]`, want: "role pruner may delete *"},
		{name: "replication policy deletes", file: "modules/region/storage.tf",
			old: `actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]`, new: `actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.this.arn}/log/*"]
  }
  statement {
    actions   = ["s3:ListBucket"]`, want: "only the pruner's role may delete"},
		// 9. units
		{name: "a role without a unit", file: "modules/region/iam.tf",
			old: "    api = { read = [], write = [], delete = [] }", new: "    api       = { read = [], write = [], delete = [] }\n    compactor = { read = [], write = [], delete = [] }",
			want: "role compactor has no unit in the release"},
		// 10. daemons
		{name: "no pruner", file: "modules/region/servers.tf",
			old: `toset(["truncator", "pruner"])`, new: `toset(["truncator"])`, want: "0 autoscaling groups run the pruner"},
		{name: "two truncators", file: "modules/region/servers.tf",
			old: "  max_size            = 1\n", new: "  max_size            = 2\n", want: "max_size is not 1"},
		// 11. health
		{name: "target group on liveness", file: "modules/region/lb.tf",
			old: `path                = "/readyz"`, new: `path                = "/healthz"`, want: "health check path is not /readyz"},
		{name: "target group on the gRPC port", file: "modules/region/lb.tf",
			old: `port                = tostring(var.ports.http)`, new: `port                = "traffic-port"`, want: "is not the servers' HTTP listener"},
		{name: "ALB gRPC health check", file: "modules/region/lb.tf",
			old: "  protocol             = \"TCP\"\n  deregistration_delay = 30\n", new: "  protocol             = \"HTTP\"\n  protocol_version     = \"GRPC\"\n  deregistration_delay = 30\n",
			want: "gRPC health checks see liveness only"},
		{name: "Route 53 on liveness", file: "modules/region/lb.tf",
			old: `resource_path     = "/verdict/fully-available"`, new: `resource_path     = "/healthz"`, want: "Route 53 does not check the region's verdict"},
		{name: "latency record without health check", file: "modules/region/lb.tf",
			old: "  health_check_id = aws_route53_health_check.api.id\n", new: "", want: "routed between regions without the verdict health check"},
		{name: "ASG replaces servers that are not ready", file: "modules/region/compute.tf",
			old: `health_check_type         = "EC2"`, new: `health_check_type         = "ELB"`, want: "health_check_type ELB"},
		// 12. alarms
		{name: "alarm threshold drifts", file: "modules/region/monitoring.tf",
			old: "threshold   = 1000", new: "threshold   = 100", want: "threshold 100, the rule's is 1000"},
		{name: "alarm duration drifts", file: "modules/region/monitoring.tf",
			old: "periods     = 5", new: "periods     = 1", want: "do not mirror the rule's for: 5m"},
		{name: "alarm missing", file: "modules/region/monitoring.tf",
			old: "    AkutanViewLag = {", new: "    AkutanViewLagX = {", want: "mirrors AkutanViewLagX, which is no rule"},
		{name: "metric not shipped", file: "modules/server-config/main.tf",
			old: `"^akutan_view_lag_entries$"`, new: `"^akutan_view_serving$"`, want: "ships no akutan_view_lag_entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			problems, known := invariantProblems(t, mutatedCopy(t, tc.file, tc.old, tc.new))
			if tc.want != "" {
				expectProblem(t, problems, tc.want)
			}
			if tc.noKnown {
				if len(known) != 0 || len(problems) != 0 {
					t.Errorf("want no problem and no known-open one, got %q and %q", problems, known)
				}
			}
		})
	}
}

// The copy itself is faithful: unmutated, it has the real layout's problems.
func TestMutatedCopyIsFaithful(t *testing.T) {
	problems, known := invariantProblems(t, mutatedCopy(t, "main.tf", "module \"region_a\"", "module \"region_a\""))
	real, realKnown := invariantProblems(t, ".")
	if len(problems) != len(real) || len(known) != len(realKnown) {
		t.Errorf("copy: %d problems, %d known; real: %d, %d", len(problems), len(known), len(real), len(realKnown))
	}
}

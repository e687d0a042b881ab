package statuspage

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/akutan/akutan/infra/health"
	"github.com/akutan/akutan/proto/apipb"
)

// page is what the template draws.
type page struct {
	Generated time.Time
	Refresh   int // seconds; 0 is never
	Version   string
	// Err, when set, makes the page an error page and nothing else is set.
	Err      string
	Log      logView
	Clusters []cluster
}

// cluster is one datacenter's part of the page.
type cluster struct {
	// Name is the datacenter, or "" while the response does not say.
	Name       string
	Verdicts   []verdict
	Spaces     []spaceMap
	Views      []viewRow
	APIServers []apiRow
	// Unplaced are the views that never answered, so their space and range
	// are unknown.
	Unplaced []string
	// Checkpoints sums up the views' checkpoint freshness.
	OldestCheckpoint  uint64
	CheckpointsBehind uint64
	CheckpointErrors  int
	NoCheckpoint      int
}

type verdict struct {
	Name    string
	OK      bool
	Missing []string
}

// spaceMap is one space's range map: rows of views, stacked so that views
// in a row do not overlap (one replica of the partitioning per row when the
// partitioning is clean), and a coverage strip underneath.
type spaceMap struct {
	Name     string
	Rows     [][]segment
	Coverage []segment
	// Gaps counts coverage pieces no up-to-date view serves.
	Gaps int
}

// segment is a horizontal piece of a bar; Left and Width are CSS
// percentages of [0, 2^64).
type segment struct {
	Left, Width string
	Class       string // "ok", "warn" or "bad"
	Label       string
	Detail      string
	Title       string
}

type viewRow struct {
	Class           string
	Address         string
	Space           string
	Range           string
	State           string
	Applied, Lag    uint64
	Checkpoint      uint64
	CheckpointLabel string
	CheckpointError string
	Error           string
}

type apiRow struct {
	Address string
	OK      bool
	Error   string
}

type logView struct {
	Available             bool
	Error                 string
	Leader                string
	FirstIndex, LastIndex uint64
	// ArchivedAtLeast is the index the archive holds at least through:
	// the log discards only entries the archive holds (DESIGN.md), so
	// everything below FirstIndex is archived. 0 when nothing is known.
	ArchivedAtLeast uint64
	Members         []memberRow
}

type memberRow struct {
	ID, Address string
	Role        string // "leader", "follower", or "" while no leader is known
	Applied     uint64
	Behind      uint64
	Error       string
	Class       string
}

func errorPage(now time.Time, err error) *page {
	return &page{Generated: now, Refresh: RefreshSeconds, Err: err.Error()}
}

// build turns a status response into the page.
func build(now time.Time, resp *apipb.StatusResponse) *page {
	p := &page{Generated: now, Refresh: RefreshSeconds, Version: resp.GetVersion(), Log: buildLog(resp.GetLog())}
	for _, c := range clusters(resp) {
		p.Clusters = append(p.Clusters, buildCluster(c, resp.GetLog().GetLastIndex()))
	}
	return p
}

// clusterStatus is the part of a response that belongs to one datacenter.
type clusterStatus struct {
	Name           string
	Views          []*apipb.ViewStatus
	APIServers     []*apipb.ApiServerStatus
	Fully, Healthy *apipb.Verdict
}

// clusters splits the response by datacenter. The response has no
// datacenter yet (the API server pools every DC's views and judges them
// together), so this is one unnamed cluster; with per-DC verdicts it groups
// views and API servers by their DC and takes each DC's verdicts.
func clusters(resp *apipb.StatusResponse) []clusterStatus {
	return []clusterStatus{{
		Views:      resp.GetViews(),
		APIServers: resp.GetApiServers(),
		Fully:      resp.GetFullyAvailable(),
		Healthy:    resp.GetHealthy(),
	}}
}

func buildLog(l *apipb.LogStatus) logView {
	lv := logView{
		Available:  l.GetAvailable(),
		Error:      l.GetError(),
		Leader:     l.GetLeader(),
		FirstIndex: l.GetFirstIndex(),
		LastIndex:  l.GetLastIndex(),
	}
	if lv.FirstIndex > 1 {
		lv.ArchivedAtLeast = lv.FirstIndex - 1
	}
	for _, m := range l.GetMembers() {
		r := memberRow{ID: m.GetId(), Address: m.GetAddress(), Applied: m.GetAppliedIndex(), Error: m.GetError(), Class: "ok"}
		switch {
		case lv.Leader == "":
		case m.GetId() == lv.Leader:
			r.Role = "leader"
		default:
			r.Role = "follower"
		}
		if lv.LastIndex > r.Applied {
			r.Behind = lv.LastIndex - r.Applied
		}
		switch {
		case r.Error != "":
			r.Class = "bad"
		case r.Behind > 0:
			r.Class = "warn"
		}
		lv.Members = append(lv.Members, r)
	}
	return lv
}

func buildCluster(c clusterStatus, logLast uint64) cluster {
	out := cluster{
		Name:     c.Name,
		Verdicts: []verdict{toVerdict("Fully available", c.Fully), toVerdict("Healthy", c.Healthy)},
	}
	views := append([]*apipb.ViewStatus(nil), c.Views...)
	sort.SliceStable(views, func(i, j int) bool {
		a, b := views[i], views[j]
		if a.GetSpace() != b.GetSpace() {
			return spaceOrder(a.GetSpace()) < spaceOrder(b.GetSpace())
		}
		if a.GetRangeStart() != b.GetRangeStart() {
			return a.GetRangeStart() < b.GetRangeStart()
		}
		return a.GetAddress() < b.GetAddress()
	})

	spaces := append([]string(nil), health.Spaces...)
	seen := map[string]bool{}
	for _, s := range spaces {
		seen[s] = true
	}
	var hv []health.View
	for _, v := range views {
		if v.GetSpace() == "" {
			out.Unplaced = append(out.Unplaced, v.GetAddress())
		}
		if v.GetSpace() != "" && !seen[v.GetSpace()] {
			seen[v.GetSpace()] = true
			spaces = append(spaces, v.GetSpace())
		}
		hv = append(hv, health.View{Addr: v.GetAddress(), Space: v.GetSpace(), Start: v.GetRangeStart(), End: v.GetRangeEnd(), UpToDate: v.GetUpToDate()})
		out.Views = append(out.Views, toViewRow(v, logLast))
	}
	for _, s := range spaces {
		out.Spaces = append(out.Spaces, buildSpace(s, views, hv))
	}

	first := true
	for _, v := range views {
		if v.GetSpace() == "" {
			continue // never answered: it has no range, and no checkpoint we know of
		}
		switch ck := v.GetCheckpointIndex(); {
		case ck == 0:
			out.NoCheckpoint++
		case first || ck < out.OldestCheckpoint:
			out.OldestCheckpoint, first = ck, false
		}
		if v.GetCheckpointError() != "" {
			out.CheckpointErrors++
		}
	}
	if out.OldestCheckpoint > 0 && logLast > out.OldestCheckpoint {
		out.CheckpointsBehind = logLast - out.OldestCheckpoint
	}

	for _, a := range c.APIServers {
		out.APIServers = append(out.APIServers, apiRow{Address: a.GetAddress(), OK: a.GetReachable(), Error: a.GetError()})
	}
	return out
}

func toVerdict(name string, v *apipb.Verdict) verdict {
	if v == nil {
		return verdict{Name: name, Missing: []string{"not reported"}}
	}
	return verdict{Name: name, OK: v.GetOk(), Missing: v.GetMissing()}
}

func spaceOrder(s string) int {
	for i, x := range health.Spaces {
		if s == x {
			return i
		}
	}
	if s == "" {
		return len(health.Spaces) + 1 // views that never answered go last
	}
	return len(health.Spaces)
}

func buildSpace(name string, views []*apipb.ViewStatus, hv []health.View) spaceMap {
	sm := spaceMap{Name: name}
	// Greedy interval colouring: views come sorted by start, and each goes
	// into the first row it does not overlap.
	var rowEnds []uint64 // the end of each row's last view; 0 is 2^64
	for _, v := range views {
		if v.GetSpace() != name {
			continue
		}
		start, end := v.GetRangeStart(), v.GetRangeEnd()
		row := -1
		for i, e := range rowEnds {
			if e != 0 && e <= start {
				row = i
				break
			}
		}
		if row < 0 {
			row = len(rowEnds)
			rowEnds = append(rowEnds, 0)
			sm.Rows = append(sm.Rows, nil)
		}
		rowEnds[row] = end
		sm.Rows[row] = append(sm.Rows[row], viewSegment(v))
	}
	for _, seg := range health.Coverage(hv, name) {
		s := segment{Left: pct(seg.Start), Width: width(seg.Start, seg.End), Class: "ok",
			Label: strconv.Itoa(seg.UpToDate)}
		switch {
		case seg.UpToDate == 0:
			s.Class, s.Label = "bad", "gap"
			sm.Gaps++
		case seg.UpToDate < 3:
			s.Class = "warn"
		}
		s.Title = fmt.Sprintf("%s: %d up-to-date views", rangeText(seg.Start, seg.End), seg.UpToDate)
		sm.Coverage = append(sm.Coverage, s)
	}
	return sm
}

func viewSegment(v *apipb.ViewStatus) segment {
	start, end := v.GetRangeStart(), v.GetRangeEnd()
	s := segment{
		Left:   pct(start),
		Width:  width(start, end),
		Class:  viewClass(v),
		Label:  v.GetAddress(),
		Detail: fmt.Sprintf("%s · applied %d · lag %d", stateText(v), v.GetLastApplied(), v.GetLag()),
	}
	t := []string{
		v.GetAddress(),
		v.GetSpace() + " " + rangeText(start, end),
		stateText(v),
		fmt.Sprintf("applied index %d, lag %d", v.GetLastApplied(), v.GetLag()),
		fmt.Sprintf("checkpoint index %d", v.GetCheckpointIndex()),
	}
	if e := v.GetCheckpointError(); e != "" {
		t = append(t, "checkpoint error: "+e)
	}
	if e := v.GetError(); e != "" {
		t = append(t, "error: "+e)
	}
	s.Title = strings.Join(t, "\n")
	return s
}

func toViewRow(v *apipb.ViewStatus, logLast uint64) viewRow {
	r := viewRow{
		Class:           viewClass(v),
		Address:         v.GetAddress(),
		Space:           v.GetSpace(),
		State:           stateText(v),
		Applied:         v.GetLastApplied(),
		Lag:             v.GetLag(),
		Checkpoint:      v.GetCheckpointIndex(),
		CheckpointError: v.GetCheckpointError(),
		Error:           v.GetError(),
	}
	if r.Space != "" {
		r.Range = rangeText(v.GetRangeStart(), v.GetRangeEnd())
	}
	switch {
	case r.Space == "":
		r.CheckpointLabel = "unknown"
	case r.Checkpoint == 0:
		r.CheckpointLabel = "none"
	case logLast > r.Checkpoint:
		r.CheckpointLabel = fmt.Sprintf("%d behind", logLast-r.Checkpoint)
	default:
		r.CheckpointLabel = "at the log's end"
	}
	return r
}

// viewClass colours a view: up to date is green; unreachable, failed or
// stopped is red; anything else (booting, catching up, lagging) is amber.
func viewClass(v *apipb.ViewStatus) string {
	switch {
	case v.GetUpToDate():
		return "ok"
	case !v.GetReachable() || v.GetError() != "" || v.GetState() == "STOPPED":
		return "bad"
	}
	return "warn"
}

func stateText(v *apipb.ViewStatus) string {
	if !v.GetReachable() {
		if st := v.GetState(); st != "" {
			return "unreachable (last seen " + strings.ToLower(strings.ReplaceAll(st, "_", " ")) + ")"
		}
		return "unreachable"
	}
	s := strings.ToLower(strings.ReplaceAll(v.GetState(), "_", " "))
	if s == "" {
		s = "unknown state"
	}
	if d, t := v.GetBootBytesDone(), v.GetBootBytesTotal(); s == "booting" && t > 0 {
		s += fmt.Sprintf(" %d%%", d*100/t)
	}
	if v.GetState() == "SERVING" && !v.GetUpToDate() {
		s += ", lagging"
	}
	return s
}

// two64 is 2^64 as a float, the width of a space.
const two64 = float64(1<<32) * float64(1<<32)

// pct is the CSS percentage of a point in [0, 2^64).
func pct(v uint64) string {
	return strconv.FormatFloat(float64(v)/two64*100, 'f', 4, 64)
}

// width is the CSS percentage of [start, end), end 0 meaning 2^64.
func width(start, end uint64) string {
	e := float64(end)
	if end == 0 {
		e = two64
	}
	return strconv.FormatFloat((e-float64(start))/two64*100, 'f', 4, 64)
}

// rangeText formats a range as infra/health does: [0x0, 2^64).
func rangeText(start, end uint64) string {
	return strings.TrimPrefix(health.Segment{Start: start, End: end}.String(), " ")
}

package statuspage

import (
	"fmt"

	"github.com/akutan/akutan/proto/apipb"
)

const half = uint64(1) << 63

// healthyStatus is the local stack's shape: three datacenters, each with
// one log replica, one API server and both spaces in two partitions.
func healthyStatus() *apipb.StatusResponse {
	resp := &apipb.StatusResponse{
		Log:            &apipb.LogStatus{FirstIndex: 1201, LastIndex: 1500, Leader: "log1", Available: true},
		FullyAvailable: &apipb.Verdict{Ok: true},
		Healthy:        &apipb.Verdict{Ok: true},
	}
	for dc := 1; dc <= 3; dc++ {
		resp.Log.Members = append(resp.Log.Members, &apipb.LogMember{
			Id: fmt.Sprintf("log%d", dc), Address: fmt.Sprintf("127.0.0.1:1710%d", dc), AppliedIndex: 1500,
		})
		resp.ApiServers = append(resp.ApiServers, &apipb.ApiServerStatus{Address: fmt.Sprintf("127.0.0.1:1720%d", dc), Reachable: true})
		for si, space := range []string{"HashSP", "HashPO"} {
			for p, r := range [][2]uint64{{0, half}, {half, 0}} {
				resp.Views = append(resp.Views, &apipb.ViewStatus{
					Address:         fmt.Sprintf("127.0.0.1:173%d%d", dc, 2*si+p),
					Space:           space,
					RangeStart:      r[0],
					RangeEnd:        r[1],
					LastApplied:     1500,
					State:           "SERVING",
					Reachable:       true,
					UpToDate:        true,
					CheckpointIndex: 1400 + uint64(10*dc+p),
				})
			}
		}
	}
	return resp
}

// view finds a fixture view by address.
func view(resp *apipb.StatusResponse, addr string) *apipb.ViewStatus {
	for _, v := range resp.Views {
		if v.Address == addr {
			return v
		}
	}
	panic("no view " + addr)
}

// gapStatus: every HashPO view of [2^63, 2^64) is behind or booting, so
// that half of HashPO has no up-to-date view.
func gapStatus() *apipb.StatusResponse {
	resp := healthyStatus()
	catchUpPOUpper(resp)
	msg := "HashPO [0x8000000000000000, 2^64): 0 up-to-date views, need %d"
	resp.FullyAvailable = &apipb.Verdict{Missing: []string{fmt.Sprintf(msg, 1)}}
	resp.Healthy = &apipb.Verdict{Missing: []string{fmt.Sprintf(msg, 3)}}
	return resp
}

// catchUpPOUpper puts HashPO's views of [2^63, 2^64) behind: one boots,
// two catch up.
func catchUpPOUpper(resp *apipb.StatusResponse) {
	for dc := 1; dc <= 3; dc++ {
		v := view(resp, fmt.Sprintf("127.0.0.1:173%d3", dc))
		v.UpToDate = false
		if dc == 1 {
			v.State, v.LastApplied, v.Lag, v.BootBytesDone, v.BootBytesTotal = "BOOTING", 0, 1500, 300, 1200
		} else {
			v.State, v.LastApplied, v.Lag = "CATCHING_UP", 900, 600
		}
	}
}

// unreachableStatus: dc2's HashSP view of [0, 2^63) stopped answering, and
// a view that never answered is known only by its address.
func unreachableStatus() *apipb.StatusResponse {
	resp := healthyStatus()
	v := view(resp, "127.0.0.1:17320")
	v.Reachable, v.UpToDate, v.Error = false, false, "rpc error: code = Unavailable desc = connection refused"
	v.CheckpointError = "put sp/0000/manifest: <timeout>"
	resp.Views = append(resp.Views, &apipb.ViewStatus{Address: "127.0.0.1:17399", Error: "dial: no route to host"})
	msg := "HashSP [0x0, 0x8000000000000000): 2 up-to-date views, need 3"
	resp.Healthy = &apipb.Verdict{Missing: []string{msg}}
	return resp
}

// noLeaderStatus: two of three log replicas are gone, so there is no
// leader and no verdict holds.
func noLeaderStatus() *apipb.StatusResponse {
	resp := healthyStatus()
	l := resp.Log
	l.Leader, l.Available, l.Error = "", false, "rpc error: code = Unavailable desc = no leader"
	l.Members[1].Error = "connection refused"
	l.Members[2].Error = "connection refused"
	msg := "log: not available for appends and non-stale reads: rpc error: code = Unavailable desc = no leader"
	resp.FullyAvailable = &apipb.Verdict{Missing: []string{msg}}
	resp.Healthy = &apipb.Verdict{Missing: []string{msg}}
	return resp
}

// degradedStatus is unreachableStatus with gapStatus's HashPO gap too.
func degradedStatus() *apipb.StatusResponse {
	resp := unreachableStatus()
	catchUpPOUpper(resp)
	gap := "HashPO [0x8000000000000000, 2^64): 0 up-to-date views, need %d"
	resp.FullyAvailable = &apipb.Verdict{Missing: []string{fmt.Sprintf(gap, 1)}}
	resp.Healthy = &apipb.Verdict{Missing: []string{
		"HashSP [0x0, 0x8000000000000000): 2 up-to-date views, need 3",
		fmt.Sprintf(gap, 3),
	}}
	return resp
}

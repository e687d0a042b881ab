// Package cluster runs the operator procedures of the design on a running
// database: a rolling restart and the replacement of a failed server
// (akutan cluster restart|replace). It acts on the topology file
// (infra/topology) and on what the servers report, never on remembered
// state, and it changes the deployment only through a Driver.
//
// # Contract
//
//  1. A procedure is a Plan: numbered steps, printed in full before the
//     first runs. --dry-run prints the plan and the state observed now and
//     changes nothing.
//  2. Before every step the Runner observes the database afresh (Observer:
//     the log's Info from its replicas, and each DC's Status from one of its
//     API servers) and checks the step's gate. A gate refuses (ErrRefused,
//     with the reason) when the step would break a verdict: it will not take
//     the last up-to-date view of a point out of a DC that is fully
//     available (State.CheckStopView), nor stop the last API server of one
//     (CheckStopAPI), nor stop or remove a log voter unless the other voters
//     that are caught up make a quorum of the configuration (CheckStopLog).
//  3. Add new, check health, remove old. A view that is its range's only one
//     in its DC is restarted or replaced through a temporary twin: the twin
//     boots from the bucket into its own empty data dir, is published in the
//     DC's views, and must be up to date (applied at least the log's last
//     index read when the wait began, and within the API's lag bound) before
//     the original is retired from the views, stopped and restarted (on a
//     wiped data dir, which boots from the bucket, for a replacement); the
//     twin is retired only once the original is up to date again. An API
//     server that is its DC's only one gets a temporary twin likewise.
//  4. Log voters go one at a time, leadership transferred away first; each
//     must rejoin and apply the log's last index before the next. A
//     replaced voter is removed from the Raft configuration, wiped, started
//     empty without bootstrapping (Driver.Join), added as a voter and waited
//     for.
//  5. Every Driver call is idempotent and every step can be repeated, so an
//     interrupted procedure is continued by running it again: a twin already
//     running is kept, publishing a published view is a no-op, a voter
//     already removed or added stays so.
//  6. An upgrade (UpgradePlan, akutan cluster upgrade --bin DIR) is a
//     rolling restart onto other binaries through a BinaryDriver: log
//     voters in place; each view replaced by one on the new binaries that
//     boots from the bucket (its state deleted), behind a twin when it is
//     its range's only one; API servers restarted. Each server must report
//     the new build (Info's members, Status) before the next step, and one
//     that reports it already is skipped. A rollback is the same plan with
//     the old binaries, refused before the first step, and at every step,
//     while the log's entry version is above the highest the binaries
//     support (their --version prints it: buildinfo.ParseBanner).
//
// # Drivers
//
// LocalDriver drives the local stack through localstack/ctl.sh (start,
// join, stop, wipe, running, start-extra, views add|remove, and bin, which
// records the binaries directory a server starts from), whose
// per-server start functions are lib.sh's, the ones up.sh uses. Its API
// servers read the DC's views from a file (--views-file, re-read every
// second), which is how a view is published or retired. A temporary server
// is NAME-tmp at its original's port + TemporaryPortOffset.
//
// # In the cloud
//
// The same plans map onto the Terraform layout (terraform/) with a driver
// that calls the cloud's API instead of ctl.sh:
//
//   - Each log voter is an instance with its own volume: Stop and Start stop
//     and start the instance, Wipe replaces the volume with an empty one,
//     Join starts it with its bootstrap flag off. Voters stay one at a time.
//   - Each view range of a DC is an autoscaling group of one or more
//     instances, launched from a template that sets --space and the range
//     and an empty data dir, so a new instance boots from the bucket.
//     Temporary raises the group's desired capacity by one; PublishView is
//     the target group (or the DC's DNS name for views) that the API
//     servers resolve (--views-dns), registered once the instance's /readyz
//     holds. A rolling restart or an upgrade is the group's instance refresh
//     with a minimum healthy percentage of 100% and the readiness check as
//     its health check, which is exactly add new, check health, remove old;
//     the procedures' gates run before each replacement.
//   - API servers are one autoscaling group per DC behind the DC's load
//     balancer and its DNS record (one per DC); instance refresh with 100%
//     minimum healthy replaces them, and clients follow the record.
//   - Observation is unchanged: Status through the DC's record, Info from
//     the log voters.
//   - An upgrade is a new launch template version (the release version of
//     the binaries, terraform's release_version) for each group, then the
//     group's instance refresh as above: UseBinaries sets the template
//     version, and each replaced instance boots from the bucket on the new
//     release. The log voters' instances are replaced one at a time on
//     their kept volumes. A rollback is the previous template version,
//     behind the same log version check.
//   - A datacenter is a region's Terraform workspace (its VPC, its view
//     and API autoscaling groups, its load balancer and DNS record, its
//     voters' instances). add-dc (AddDCPlan) runs after that workspace is
//     applied with every group at zero: Start raises a group to the
//     file's count, so its views launch on empty volumes and boot from the
//     region's replicated bucket plus the log's tail; the DC is registered
//     in the bucket's cluster registry (clusters.json) not critical first,
//     and critical once fully available. remove-dc (RemoveDCPlan) marks it
//     non-critical first, scales its API group, then its view groups, to
//     zero, removes its voters from the Raft configuration, drops it from
//     the registry; the workspace is destroyed, and the DC deleted from the
//     topology file, afterwards.
//   - Repartition (PlanRepartition, RepartitionPlan) writes the topology,
//     and Terraform's view ranges of the DC, with the split in progress:
//     each new range is a new autoscaling group (its template's range and
//     empty volumes, so its instances boot from the bucket), whose
//     instances are registered in the DC's view target group or DNS name
//     once /readyz holds, which is PublishView; the API servers find them
//     there without a restart. Once every new range is up to date, each old
//     range's instances are deregistered (behind the retire gate), and its
//     group is scaled to zero and deleted with its volumes; the final
//     topology no longer lists it.
package cluster

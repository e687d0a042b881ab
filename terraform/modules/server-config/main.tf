# What every Akutan server and daemon of one region runs: its environment
# file (/etc/akutan/ROLE.env, read by deploy/systemd/akutan-ROLE.service
# through EnvironmentFile=) and the cloud-init user data that installs the
# release and writes that file. No provider: the region module calls it for
# the cloud, and deploy/release's test calls it with loopback inputs and
# starts what it renders, so both get the same command lines.
#
# Every AKUTAN_* name is a flag of the binary the unit runs (AKUTAN_ + the
# flag name upper-cased, - as _); the test checks that against the binaries.

locals {
  servers = merge(
    {
      for id in var.local_log_ids : "log/${id}" => {
        role = "log"
        disk = lookup(var.log_disks, id, "")
        env = {
          # akutan-log --id --raft-addr --grpc-addr --bootstrap --peers
          AKUTAN_ID        = id
          AKUTAN_RAFT_ADDR = one([for p in var.log_peers : p.raft_addr if p.id == id])
          AKUTAN_GRPC_ADDR = one([for p in var.log_peers : p.grpc_addr if p.id == id])
          AKUTAN_BOOTSTRAP = "true"
          AKUTAN_PEERS     = join(",", [for p in var.log_peers : "${p.id}=${p.raft_addr}"])
          AKUTAN_DATA_DIR  = var.data_dir
          AKUTAN_ARCHIVE   = var.store_url
          AKUTAN_HTTP_ADDR = var.listen.http
        }
      }
    },
    {
      for k, r in var.view_ranges : "view/${k}" => {
        role = "view"
        disk = "instance-store"
        env = {
          AKUTAN_SPACE               = lower(trimprefix(r.space, "Hash"))
          AKUTAN_RANGE_START         = r.start
          AKUTAN_RANGE_END           = r.end
          AKUTAN_CLUSTER             = var.cluster
          AKUTAN_LOG                 = join(",", var.log_clients)
          AKUTAN_STORE               = var.store_url
          AKUTAN_CHECKPOINT_INTERVAL = var.checkpoint_interval
          AKUTAN_DATA_DIR            = var.data_dir
          AKUTAN_LISTEN              = var.listen.view_grpc
          AKUTAN_HTTP_ADDR           = var.listen.http
        }
      }
    },
    {
      api = {
        role = "api"
        disk = ""
        env = {
          AKUTAN_DC        = var.cluster
          AKUTAN_LOG       = join(",", var.log_clients)
          AKUTAN_VIEWS_DNS = join(",", var.views_dns)
          AKUTAN_LISTEN    = var.listen.api_grpc
          AKUTAN_HTTP_ADDR = var.listen.http
        }
      }
      truncator = {
        role = "truncator"
        disk = ""
        env = {
          # akutan log truncate --every: plans from the catalogs and
          # discards the log's prefix.
          AKUTAN_LOG      = join(",", var.log_clients)
          AKUTAN_STORE    = var.store_url
          AKUTAN_CLUSTERS = join(",", var.critical_clusters)
          AKUTAN_EVERY    = var.daemons.truncate_every
          AKUTAN_DELAY    = var.daemons.truncate_delay
          AKUTAN_QUIET    = "true"
        }
      }
      pruner = {
        role = "pruner"
        disk = ""
        env = {
          # akutan backup prune --every: retention and garbage collection,
          # the only deleter.
          AKUTAN_STORE = var.store_url
          AKUTAN_EVERY = var.daemons.prune_every
          AKUTAN_KEEP  = tostring(var.daemons.prune_keep)
          AKUTAN_GRACE = var.daemons.prune_grace
          AKUTAN_QUIET = "true"
        }
      }
    },
  )

  roles = { for k, s in local.servers : k => s.role }

  env_files = {
    for k, s in local.servers : k => join("", [for name in sort(keys(s.env)) : "${name}=${s.env[name]}\n"])
  }

  user_data = {
    for k, s in local.servers : k => templatefile("${path.module}/templates/user-data.sh.tftpl", {
      role              = s.role
      disk              = s.disk
      env_file          = local.env_files[k]
      release_bucket    = var.release.bucket
      release_version   = var.release.version
      discovery_service = lookup(var.discovery, s.role == "view" ? trimprefix(k, "view/") : s.role, "")
      http_port         = element(split(":", var.listen.http), length(split(":", var.listen.http)) - 1)
    })
  }
}

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
          AKUTAN_ID = id
          # It binds its own listen addresses (its fixed IP) and dials the
          # others by their peers-list addresses (stable DNS names).
          AKUTAN_RAFT_ADDR = try(var.log_listen[id].raft_addr, one([for p in var.log_peers : p.raft_addr if p.id == id]))
          AKUTAN_GRPC_ADDR = try(var.log_listen[id].grpc_addr, one([for p in var.log_peers : p.grpc_addr if p.id == id]))
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

  http_port = element(split(":", var.listen.http), length(split(":", var.listen.http)) - 1)

  # What the CloudWatch agent ships of each role's /metrics: the series the
  # CloudWatch alarms (modules/region/monitoring.tf) mirror the Prometheus
  # rules of deploy/prometheus/alerts.yml on, with the dimension dc (the
  # scrape adds it). The daemons have no HTTP listener and are not scraped.
  metric_declarations = {
    log = [{
      source_labels    = ["job"]
      label_matcher    = "^akutan-log$"
      dimensions       = [["dc"]]
      metric_selectors = ["^akutan_log_archive_lag_seconds$"]
    }]
    view = [{
      source_labels    = ["job"]
      label_matcher    = "^akutan-view$"
      dimensions       = [["dc"]]
      metric_selectors = ["^akutan_view_lag_entries$"]
    }]
    api = [{
      source_labels    = ["job"]
      label_matcher    = "^akutan-api$"
      dimensions       = [["dc"]]
      metric_selectors = ["^akutan_cluster_fully_available$", "^akutan_cluster_healthy$"]
    }]
  }

  # The agent's Prometheus scrape of the server's own listener. JSON is
  # YAML, so jsonencode writes the agent's prometheus.yaml.
  prometheus_config = {
    for role in keys(local.metric_declarations) : role => jsonencode({
      global = { scrape_interval = "30s", scrape_timeout = "10s" }
      scrape_configs = [{
        job_name       = "akutan-${role}"
        static_configs = [{ targets = ["127.0.0.1:${local.http_port}"], labels = { dc = var.cluster } }]
      }]
    })
  }

  cloudwatch_agent_config = {
    for role, decls in local.metric_declarations : role => var.metrics == null ? "" : jsonencode({
      logs = {
        force_flush_interval = 5
        metrics_collected = {
          prometheus = {
            log_group_name         = var.metrics.log_group
            prometheus_config_path = "/opt/aws/amazon-cloudwatch-agent/etc/prometheus.yaml"
            emf_processor = {
              metric_declaration_dedup = true
              metric_namespace         = var.metrics.namespace
              metric_declaration       = decls
            }
          }
        }
      }
    })
  }

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
      http_port         = local.http_port
      cloudwatch_agent  = lookup(local.cloudwatch_agent_config, s.role, "")
      prometheus_config = lookup(local.prometheus_config, s.role, "")
    })
  }
}

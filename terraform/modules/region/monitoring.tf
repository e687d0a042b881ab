# Metrics and alarms. The CloudWatch agent on every log replica, view and
# API server scrapes the server's own /metrics (Prometheus) and ships the
# series below into this log group as embedded-metric-format records, which
# CloudWatch turns into metrics in the namespace Akutan with the dimension
# dc = this region's cluster (modules/server-config, metric_declarations).
#
# The alarms mirror the Prometheus rules of deploy/prometheus/alerts.yml
# (the tests compare metric, comparison, threshold and duration with the
# rule of the same name): the archive lag (the RPO), view lag, and the
# cluster's verdicts. CloudWatch merges the samples of every server of the
# region into one series per dimension, so Maximum over a minute is the
# rules' max over servers. Each alarm sees its own region's servers: the
# archive lag alarms in the region whose voters report it.

locals {
  metrics_namespace = "Akutan"

  # Keyed by the Prometheus rule each mirrors. periods is the rule's `for`
  # in minutes (at least one). A region that stops reporting its verdicts
  # is the case failover is for, so missing verdicts breach; the lags
  # mirror Prometheus, where a missing series fires nothing.
  alarms = {
    AkutanArchiveLag = {
      metric      = "akutan_log_archive_lag_seconds"
      comparison  = "GreaterThanThreshold"
      threshold   = 10
      periods     = 1
      missing     = "notBreaching"
      description = "The log archive is more than 10 s behind: the RPO from the bucket (deploy/prometheus/alerts.yml AkutanArchiveLag)."
    }
    AkutanViewLag = {
      metric      = "akutan_view_lag_entries"
      comparison  = "GreaterThanThreshold"
      threshold   = 1000
      periods     = 2
      missing     = "notBreaching"
      description = "A view has stayed more than 1000 entries behind the log (AkutanViewLag)."
    }
    AkutanClusterNotFullyAvailable = {
      metric      = "akutan_cluster_fully_available"
      comparison  = "LessThanThreshold"
      threshold   = 1
      periods     = 1
      missing     = "breaching"
      description = "No API server judges ${local.cluster} fully available; `akutan status` names what is missing (AkutanClusterNotFullyAvailable)."
    }
    AkutanClusterNotHealthy = {
      metric      = "akutan_cluster_healthy"
      comparison  = "LessThanThreshold"
      threshold   = 1
      periods     = 5
      missing     = "breaching"
      description = "No API server judges ${local.cluster} healthy: one more failure may make it unavailable (AkutanClusterNotHealthy)."
    }
  }
}

resource "aws_cloudwatch_log_group" "metrics" {
  name              = "/akutan/${local.cluster}/prometheus"
  retention_in_days = 7
}

resource "aws_cloudwatch_metric_alarm" "alert" {
  for_each = local.alarms

  alarm_name          = "${local.cluster}-${each.key}"
  alarm_description   = each.value.description
  namespace           = local.metrics_namespace
  metric_name         = each.value.metric
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = each.value.periods
  datapoints_to_alarm = each.value.periods
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  treat_missing_data  = each.value.missing
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  dimensions = {
    dc = local.cluster
  }

  tags = { "akutan:alert" = each.key }
}

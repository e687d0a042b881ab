# tflint configuration for every module under terraform/. The terraform
# ruleset is bundled with tflint: no plugin is downloaded.
config {
  call_module_type = "local"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}

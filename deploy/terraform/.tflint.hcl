# tflint with its bundled Terraform ruleset only (no plugin to download), the
# recommended preset: unused declarations, deprecated syntax, typed and pinned inputs.
plugin "terraform" {
  enabled = true
  preset  = "recommended"
}

# The pipeline's own runner. Never deployed by the pipeline itself (see the self-update guard).
inputs = {
  runner_image_tag = "v0.1.0"
}

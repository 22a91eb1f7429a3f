"""CI's resources around jobs: queues, templates and workflows (issue 15).

Platform teams govern CI through these as much as through jobs: a queue decides throughput
and where callbacks go, templates are the presets every service shares, workflows run jobs on
upload. This part sits beside `jobs` (it calls CI through `upstream`, and `api` serves it):

* `calls`: one method per CI operation of `/queue`, `/template`, `/workflow`,
  `/triggerworkflow` and `/workflowexecution`, through `CiClient`'s pipeline;
* `template_wire`: a `MediaTemplate` as CI's create/update body, from the
  `(template_params)` option of its containers;
* `executions`: following workflow runs for `WatchWorkflowExecution`, from CI's
  `WorkflowFinish` callbacks (checked against CI) or else polling.
"""

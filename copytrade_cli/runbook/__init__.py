"""The runbook: each operator step that needs more than one package, one module per step, called by the CLI.

Below this layer the packages depend one way (`chain` and `polymarket` at the bottom, `localworld` and
`supervisor` on top of them); what needs several of them at once lives here: `fork` (node + planted
Polymarket + contracts + fleet + local CLOB), `readiness` (the go-live checks), `supervise` (readiness as the
supervisor's pre-flight, then the supervisor), `demo` (the whole runbook in one process) and `migrate`
(moving users to new contracts). Nothing below imports this package.
"""

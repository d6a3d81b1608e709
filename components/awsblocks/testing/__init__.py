"""The offline test harness: Pulumi's mock runtime with a recorder, for this library and its users.

- `synthesize(program, config=...)` runs a program (a component, a whole stack) and returns a
  `Synthesis` of every declared resource with its resolved inputs;
- `OfflineMocks` answers the AWS provider's data sources and computed outputs;
- `RecordingMonitor` / `DeclaredResource` are what the synthesis is made of.
"""

from awsblocks.testing.mocks import MOCK_ACCOUNT_ID, OfflineMocks, policy_document_json, signing_job_outputs
from awsblocks.testing.recorder import DeclaredResource, RecordingMonitor
from awsblocks.testing.synthesis import Synthesis, as_config_string, short_type, synthesize

__all__ = [
    "MOCK_ACCOUNT_ID",
    "DeclaredResource",
    "OfflineMocks",
    "RecordingMonitor",
    "Synthesis",
    "as_config_string",
    "policy_document_json",
    "short_type",
    "signing_job_outputs",
    "synthesize",
]

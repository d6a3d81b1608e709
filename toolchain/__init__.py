"""The offline toolchain: synthesis of a Pulumi project, preview, the reviewer's report, docs, the
embedded runner. Works on any Pulumi project built from the awsblocks library."""

"""The app's database plumbing: session policy, column types, migration helpers."""

"""GitOps: which pipeline version runs, obtained from git at a commit and registered once."""

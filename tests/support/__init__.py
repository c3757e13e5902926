"""Test helpers shared by unit and end-to-end tests (fakes at seams we cannot run here)."""

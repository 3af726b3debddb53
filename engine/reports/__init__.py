"""The session's reports, rebuilt from its files alone: what each segment's research config did
(segment_results), the one-page plan after a segment (plan_page), the session's aggregates
(global_metrics) and its summary (summary), the charts (charts), and their schemas (documents).

This package imports only `engine`: the conductor writes these documents as a session runs,
and `maestro-tui report DIR` rewrites the same ones from the same files.
"""

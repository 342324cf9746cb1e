"""The monthly client report: assemble (facts) → charts → render (HTML, PDF, Markdown, JSON)."""

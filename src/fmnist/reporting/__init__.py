"""Reporting: self-contained HTML pages, the comparison report, the data analysis and figures."""

"""reports/portal"""

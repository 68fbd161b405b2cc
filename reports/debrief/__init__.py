"""reports/debrief"""

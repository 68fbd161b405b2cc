"""drills/programme"""

"""Result reports: terminal table, JSON, JUnit XML, HTML."""

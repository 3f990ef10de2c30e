"""Result reports: terminal table, JSON, JUnit XML, HTML.

* :mod:`harness.reports.cells`    – one cell as a (redacted) document, and in words; shared by every format
* :mod:`harness.reports.table`    – the terminal table and summary line
* :mod:`harness.reports.document` – the whole run as one JSON document
* :mod:`harness.reports.junit`    – JUnit XML, from the document
* :mod:`harness.reports.html`     – the HTML page, from the document
* :mod:`harness.reports.publish`  – what ``harness run`` prints and the report files it writes
* :mod:`harness.reports.parity`   – two run documents (local, compose) compared cell by cell
"""

"""The block-page rule: an HTML error on a decrypted connection is the proxy's answer."""

from harness.clients.blockpage import block_page_message, is_block_page


def test_an_html_error_on_a_decrypted_connection_is_the_proxys():
    assert is_block_page(403, "text/html; charset=utf-8", decrypted=True)
    assert is_block_page(502, "text/html", decrypted=True)  # mitmproxy's own answer to an untrusted upstream


def test_the_servers_answers_are_not_block_pages():
    assert not is_block_page(200, "text/html", decrypted=True)
    assert not is_block_page(404, "application/json", decrypted=True)  # the ScreenMeet API answers JSON
    assert not is_block_page(403, "text/html", decrypted=False)  # a pinned connection reaches the real server
    assert not is_block_page(502, None, decrypted=True)


def test_the_wording_names_the_proxy():
    assert block_page_message(403) == "the proxy answered with a block page: HTTP 403"

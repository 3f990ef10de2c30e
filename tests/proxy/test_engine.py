import ipaddress

from cryptography import x509

from harness.proxy.engine import general_name, names_with_host


def test_general_name_tells_addresses_from_names():
    assert general_name("api.screenmeet.com") == x509.DNSName("api.screenmeet.com")
    assert general_name("127.0.0.1") == x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    assert general_name("[::1]") == x509.IPAddress(ipaddress.ip_address("::1"))


def test_the_connect_host_comes_first_and_names_are_not_repeated():
    current = [x509.DNSName("screenmeet.com"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
               x509.DNSName("api.screenmeet.com")]
    assert names_with_host("api.screenmeet.com", current) == [
        x509.DNSName("api.screenmeet.com"), x509.DNSName("screenmeet.com"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]

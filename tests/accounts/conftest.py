import pytest
from django.test import Client


@pytest.fixture
def client(client_ip):
    """A test client that speaks from its own address.

    allauth's per-address limits (``login`` 30/m/ip, ``login_failed`` 10/m/ip,
    ``reset_password`` 20/m/ip) live in the shared cache; with every test on
    127.0.0.1 they would add up across tests run within the same minute.
    """
    return Client(REMOTE_ADDR=client_ip)

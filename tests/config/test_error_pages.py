"""The site's own 403, 404 and 500 pages (DEBUG is off in tests), and who
is kept out of the staff pages how."""

import pytest
from django.template.loader import render_to_string

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_an_artist_opening_a_staff_page_gets_a_page_that_says_why(client):
    # given a signed-in artist
    client.force_login(UserFactory())

    # when they open the audit view
    response = client.get("/audit/")

    # then a styled 403 says the page is for staff, with a way back
    assert response.status_code == 403
    page = response.content.decode()
    assert "This page is not open to your account" in page
    assert "for the platform&#x27;s staff" in page
    assert 'href="/tracks/"' in page
    assert 'class="site-header"' in page


def test_a_visitor_opening_a_staff_page_is_sent_to_sign_in_and_back(client):
    response = client.get("/audit/consumers/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/audit/consumers/"


def test_an_unknown_address_gets_the_sites_404_page(client):
    response = client.get("/no-such-page/")

    assert response.status_code == 404
    page = response.content.decode()
    assert "There is nothing here" in page
    assert 'href="/"' in page and 'class="site-header"' in page


def test_the_500_page_needs_neither_the_request_nor_the_database():
    # Django renders it with no context at all
    page = render_to_string("500.html")

    assert "Something went wrong on our side" in page
    assert 'href="/"' in page and "/static/css/refrain.css" in page

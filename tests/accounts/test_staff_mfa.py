from urllib.parse import quote

import pytest
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.urls import reverse

STAFF_PAGES = ["/audit/", "/admin/"]


@pytest.fixture
def staff_user(staff_user):
    """Staff in the auditors group: the audit is theirs (and policy admins')."""
    from django.contrib.auth.models import Group

    from accounts.services import GROUP_AUDITORS

    staff_user.groups.add(Group.objects.get_or_create(name=GROUP_AUDITORS)[0])
    return staff_user


MFA_NEEDED = "Staff pages need two-factor authentication."


@pytest.fixture
def mfa_required(settings):
    settings.REFRAIN_STAFF_MFA_REQUIRED = True


@pytest.fixture
def mfa_not_required(settings):
    settings.REFRAIN_STAFF_MFA_REQUIRED = False


@pytest.mark.usefixtures("mfa_required")
@pytest.mark.parametrize("path", STAFF_PAGES)
def test_staff_without_mfa_is_sent_to_enrol(client, staff_user, path):
    # given a signed-in staff member with no second factor
    client.force_login(staff_user)

    # when they open a staff page
    response = client.get(path)

    # then they are sent to the MFA page and told why
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_index")
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert MFA_NEEDED in page.text


@pytest.mark.usefixtures("mfa_required")
@pytest.mark.parametrize("path", STAFF_PAGES)
def test_recovery_codes_alone_do_not_count_as_mfa(client, staff_user, path):
    # given a staff member whose only authenticator is a set of recovery codes
    RecoveryCodes.activate(staff_user)
    client.force_login(staff_user)

    # when they open a staff page, then they are still sent to enrol
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == reverse("mfa_index")


@pytest.mark.usefixtures("mfa_required")
@pytest.mark.parametrize("path", STAFF_PAGES)
def test_staff_with_totp_reach_staff_pages(client, staff_user, path):
    # given a staff member who enrolled an authenticator app
    TOTP.activate(staff_user, generate_totp_secret())
    client.force_login(staff_user)

    # when they open a staff page, then it is shown, with no MFA message
    response = client.get(path)
    assert response.status_code == 200
    assert MFA_NEEDED not in response.text


@pytest.mark.usefixtures("mfa_not_required")
@pytest.mark.parametrize("path", STAFF_PAGES)
def test_staff_reach_staff_pages_without_mfa_when_not_required(
    client, staff_user, path
):
    # given the requirement is switched off and a staff member without MFA
    client.force_login(staff_user)

    # when they open a staff page, then it is shown
    response = client.get(path)
    assert response.status_code == 200
    assert MFA_NEEDED not in response.text


@pytest.mark.usefixtures("mfa_required")
def test_staff_reach_other_pages_without_mfa(client, staff_user):
    # given a staff member without MFA; the requirement covers staff pages only
    client.force_login(staff_user)

    # when they open their own settings, then nothing stops them
    response = client.get(reverse("accounts:settings"))
    assert response.status_code == 200
    assert MFA_NEEDED not in response.text


@pytest.mark.usefixtures("mfa_required")
def test_non_staff_on_audit_get_the_staff_only_page(client, user):
    # given a signed-in artist (not staff, no MFA)
    client.force_login(user)

    # when they open the audit page
    response = client.get("/audit/")

    # then the site's 403 page says the page is for staff (not the MFA setup)
    assert response.status_code == 403
    assert "for the platform" in response.text
    assert MFA_NEEDED not in response.text


@pytest.mark.usefixtures("mfa_required")
def test_non_staff_on_admin_get_the_admin_refusal(client, user):
    # given a signed-in artist (not staff, no MFA)
    client.force_login(user)

    # when they open the admin
    response = client.get("/admin/")

    # then the admin sends them to its login, not to MFA, and that refuses them
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('admin:login')}?next=/admin/"
    refused = client.get(response["Location"])
    assert refused.status_code == 403
    assert MFA_NEEDED not in refused.text


def test_anonymous_admin_goes_through_the_allauth_login(client, db):
    # given a visitor who is not signed in
    # when they open the admin
    response = client.get("/admin/", follow=True)

    # then they end on allauth's sign-in page, which returns them to /admin/
    assert response.redirect_chain == [
        (f"{reverse('admin:login')}?next=/admin/", 302),
        (f"{reverse('account_login')}?next={quote('/admin/', safe='')}", 302),
    ]
    assert response.status_code == 200
    assert response.request["PATH_INFO"] == reverse("account_login")

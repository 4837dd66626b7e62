import factory
from allauth.account.models import EmailAddress
from django.utils.text import slugify
from factory.django import DjangoModelFactory

from accounts.models import User
from catalog.models import Label, LicenseClass, Track
from catalog.services import track_create

TEST_PASSWORD = "a-long-test-password-42"


class UserFactory(DjangoModelFactory):
    """A signed-up artist whose e-mail address is verified."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"artist{n}@example.com")
    display_name = factory.Faker("name")
    password = factory.django.Password(TEST_PASSWORD)

    @factory.post_generation
    def verified(obj, create, extracted, **kwargs):
        if create and extracted is not False:
            EmailAddress.objects.create(
                user=obj, email=obj.email, verified=True, primary=True
            )


class StaffFactory(UserFactory):
    is_staff = True


class LabelFactory(DjangoModelFactory):
    """A record label, named and slugged uniquely."""

    class Meta:
        model = Label
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Label {n} Records")
    slug = factory.LazyAttribute(lambda label: slugify(label.name))


class TrackFactory(DjangoModelFactory):
    """A track created through ``catalog.services.track_create``.

    Going through the service keeps ``ArtistCatalogStats`` (the total shown on
    the track list) in step, as every real write does. ``TrackFactory(
    signed=True)`` makes a label-licensed track with its label.
    """

    class Meta:
        model = Track

    class Params:
        signed = factory.Trait(
            license_class=LicenseClass.LABEL, label=factory.SubFactory(LabelFactory)
        )

    artist = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"Track {n:05d}")
    # A valid, unique ISRC: country QZ, registrant RFN, year 25.
    isrc = factory.Sequence(lambda n: f"QZRFN25{n % 100_000:05d}")
    duration_ms = 215_000
    license_class = LicenseClass.INDEPENDENT
    label = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return track_create(**kwargs)

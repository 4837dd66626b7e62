import factory
from allauth.account.models import EmailAddress
from factory.django import DjangoModelFactory

from accounts.models import User

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

"""The test users, created or brought back to their seeded state at every start."""

from django.contrib.auth import get_user_model

USERS = (
    # username, password, email, first name, last name, active
    ("alice", "alice-password", "alice@example.test", "Alice", "Example", True),
    ("bob", "bob-password", "bob@example.test", "Bob", "Example", True),
    ("carol", "carol-password", "carol@example.test", "Carol", "Example", False),
)


def seed_users():
    User = get_user_model()
    for username, password, email, first, last, active in USERS:
        user, created = User.objects.get_or_create(username=username)
        user.email, user.first_name, user.last_name, user.is_active = email, first, last, active
        if created or not user.check_password(password):
            user.set_password(password)
        user.save()

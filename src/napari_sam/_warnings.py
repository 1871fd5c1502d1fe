"""The package's own warning category (the test suite turns it into errors)."""


class NapariSamWarning(UserWarning):
    """Something worked, but probably not as the user meant (e.g. a channel guess)."""

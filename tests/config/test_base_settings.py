"""The helpers in config/settings/base.py that turn URLs into settings: a
database or cache that stops answering is given up on within seconds."""

from config.settings.base import cache_from_url, database_from_url


def test_a_postgres_database_gives_up_connecting_after_three_seconds():
    config = database_from_url("postgres://refrain@db.example:5432/refrain")

    assert config["OPTIONS"]["connect_timeout"] == 3


def test_the_connect_timeout_can_be_set(monkeypatch):
    monkeypatch.setenv("REFRAIN_DB_CONNECT_TIMEOUT", "5")

    config = database_from_url("postgres://refrain@db.example:5432/refrain")

    assert config["OPTIONS"]["connect_timeout"] == 5


def test_sqlite_gets_no_connect_timeout():
    config = database_from_url("sqlite:////tmp/refrain.sqlite3")

    assert "connect_timeout" not in config["OPTIONS"]


def test_a_redis_cache_gives_up_after_two_seconds():
    config = cache_from_url("redis://cache.example:6379/3")

    assert config == {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://cache.example:6379/3",
        "OPTIONS": {"socket_connect_timeout": 2.0, "socket_timeout": 2.0},
    }


def test_a_local_memory_cache_is_left_as_it_is():
    config = cache_from_url("locmemcache://refrain")

    assert config == {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "refrain",
    }

"""Single consent toggle under concurrent load on PostgreSQL (issue 4).

POST /tracks/<id>/consent/ as HTMX (CSRF, session), random tracks of the
owner's 20,000 and random yes/no, 2 gunicorn workers, 16 connections, 10 s.
Baseline, same app, same run: a signed-in POST doing one UPDATE and two
INSERTs in one transaction. Goal: >= 80% of its throughput, p99 <= 1.25x.
"""

import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402
from bench.catalog_list import OWNER, ensure_catalogue  # noqa: E402

LUA = """
ids = {%(ids)s}
pks = {%(pks)s}
states = {"granted", "denied"}
math.randomseed(os.time())
request = function()
  local i = math.random(#ids)
  local s = states[math.random(2)]
  local path
  local body
  if "%(kind)s" == "toggle" then
    path = "/tracks/" .. ids[i] .. "/consent/"
    body = "use=ai-training&state=" .. s
  else
    path = "/bench/write"
    body = "track=" .. pks[i] .. "&state=" .. s
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Cookie"] = "%(cookie)s",
    ["X-CSRFToken"] = "%(csrf)s",
    ["HX-Request"] = "true",
    ["Referer"] = "%(base)s/tracks/",
  }, body)
end
"""


def main() -> None:
    ensure_catalogue()
    common.setup_django()
    from django.db import connection
    from django.middleware.csrf import _get_new_csrf_string

    from catalog.models import Track

    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS bench_write_log "
            "(id bigserial PRIMARY KEY, track_id bigint, state text, at timestamptz)"
        )
    rows = list(
        Track.objects.filter(artist__email=OWNER, license_class="independent")
        .order_by("?")
        .values_list("public_id", "pk")[:2000]
    )
    rng = random.Random(3)
    rng.shuffle(rows)
    csrf = _get_new_csrf_string()
    cookie = common.session_cookie_for(OWNER) + f"; csrftoken={csrf}"
    results = {}
    with common.gunicorn(workers=2) as base, tempfile.TemporaryDirectory() as tmp:
        for kind, name in (
            ("write", "baseline: UPDATE + 2 INSERT"),
            ("toggle", "consent toggle"),
        ):
            script = Path(tmp) / f"{kind}.lua"
            script.write_text(
                LUA
                % {
                    "ids": ",".join(f'"{public_id}"' for public_id, _ in rows),
                    "pks": ",".join(str(pk) for _, pk in rows),
                    "kind": kind,
                    "cookie": cookie,
                    "csrf": csrf,
                    "base": base,
                }
            )
            common.load_script(name, base, script, seconds=2)  # warm up
            results[name] = common.load_script(name, base, script, seconds=10)
            r = results[name]
            print(
                f"  {name}: {r.requests_per_second:.0f} req/s, p50 {r.p50_ms:.1f} ms, "
                f"p99 {r.p99_ms:.1f} ms, errors {r.errors}",
                flush=True,
            )
    baseline = results["baseline: UPDATE + 2 INSERT"]
    toggle = results["consent toggle"]
    throughput = toggle.requests_per_second / baseline.requests_per_second
    p99 = toggle.p99_ms / baseline.p99_ms
    print()
    print(
        common.table(
            [
                ["run", "req/s", "p50 ms", "p99 ms", "x baseline", "p99/baseline"],
                *[
                    [
                        r.name,
                        f"{r.requests_per_second:.0f}",
                        f"{r.p50_ms:.1f}",
                        f"{r.p99_ms:.1f}",
                        f"{r.requests_per_second / baseline.requests_per_second:.2f}",
                        f"{r.p99_ms / baseline.p99_ms:.2f}",
                    ]
                    for r in (baseline, toggle)
                ],
            ]
        )
    )
    ok = throughput >= 0.8 and p99 <= 1.25 and toggle.errors == 0
    print(
        "\ngoal (>= 80% of baseline throughput, p99 <= 1.25x): "
        + ("MET" if ok else "NOT MET")
    )
    from consent.ledger import verify_chains

    ids = list(
        Track.objects.filter(pk__in=[pk for _, pk in rows]).values_list("pk", flat=True)
    )
    report = verify_chains(track_ids=ids)
    print(
        f"ledger after the run: {report.rows_checked} rows on {report.tracks_checked} "
        f"tracks, {len(report.breaks)} breaks"
    )


if __name__ == "__main__":
    main()

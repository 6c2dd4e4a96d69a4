#!/usr/bin/env bash
# Build the image, run it on 127.0.0.1, wait until it is healthy, open the Latent maps page in
# Chromium (Playwright), check that no exception box shows, stop it; print the timings.
#
#   scripts/container_smoke.sh                       # docker if present, else podman
#   ENGINE=podman BASE_IMAGE=localhost/bookworm-py311 TORCH_SOURCE=wheelhouse scripts/container_smoke.sh
#
# Environment (all optional):
#   ENGINE        docker | podman (podman builds with --format docker: the OCI format drops HEALTHCHECK)
#   ENGINE_OPTS   global engine options, e.g. "--storage-driver vfs" for podman where overlay fails
#   BASE_IMAGE    passed as --build-arg BASE_IMAGE (default: the Dockerfile's)
#   TORCH_SOURCE  passed as --build-arg TORCH_SOURCE: index URL | pypi | wheelhouse (needs ./wheels/)
#   BUILD_OPTS    further build options (e.g. "--network host", "--no-cache")
#   CONTEXT       build context (default: the repository root)
#   RUN_OPTS      further run options (e.g. "--ulimit nofile=20000:20000 --ulimit nproc=8192:8192"
#                 where the engine may not raise rlimits: runc's "error setting rlimit type 6/7")
#   IMAGE         tag (default latent-explorer:smoke);  SKIP_BUILD=1 reuses it
#   PORT          host port on 127.0.0.1 (default 8599);  MEMORY  container memory limit (default 2g)
#   PYTHON        a Python with playwright installed (default .venv/bin/python, else python3)
#   CHROMIUM      browser binary (default /usr/bin/chromium)
#   KEEP=1        leave the container running at the end
set -euo pipefail
cd "$(dirname "$0")/.."

ENGINE=${ENGINE:-$(command -v docker >/dev/null 2>&1 && echo docker || echo podman)}
IMAGE=${IMAGE:-latent-explorer:smoke}
NAME=${NAME:-latent-explorer-smoke-$$}
PORT=${PORT:-8599}
MEMORY=${MEMORY:-2g}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# shellcheck disable=SC2206
eng=("$ENGINE" ${ENGINE_OPTS:-})

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '[smoke] %s\n' "$*" >&2; }

cleanup() {
    if [[ "${KEEP:-0}" != 1 ]]; then "${eng[@]}" rm -f "$NAME" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

# ---- build --------------------------------------------------------------------------------------
build_s=skipped
if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
    args=(build -t "$IMAGE")
    [[ "$(basename "$ENGINE")" == podman* ]] && args+=(--format docker)
    [[ -n "${BASE_IMAGE:-}" ]] && args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
    [[ -n "${TORCH_SOURCE:-}" ]] && args+=(--build-arg "TORCH_SOURCE=$TORCH_SOURCE")
    # shellcheck disable=SC2206
    args+=(${BUILD_OPTS:-} "${CONTEXT:-.}")
    say "${eng[*]} ${args[*]}"
    t0=$(now)
    "${eng[@]}" "${args[@]}"
    build_s=$(since "$t0")
fi
size_b=$("${eng[@]}" image inspect -f '{{.Size}}' "$IMAGE")
size=$(awk -v b="$size_b" 'BEGIN { printf "%.2f GB", b / 1e9 }')
hc=$("${eng[@]}" image inspect -f '{{.Config.Healthcheck}}' "$IMAGE" 2>/dev/null || true)
if [[ -z "$hc" || "$hc" == "<nil>" || "$hc" == "<no value>" ]]; then
    say "FAIL: the image has no HEALTHCHECK (podman: build with --format docker)"; exit 1
fi

# ---- run and wait for health ----------------------------------------------------------------------
say "starting $NAME on 127.0.0.1:$PORT (memory limit $MEMORY)"
t0=$(now)
# shellcheck disable=SC2086
"${eng[@]}" run -d --name "$NAME" -p "127.0.0.1:$PORT:8501" --memory "$MEMORY" ${RUN_OPTS:-} \
    -e ELX_READ_ONLY=1 -e STREAMLIT_SERVER_ALLOWED_HOSTS="localhost 127.0.0.1" "$IMAGE" >/dev/null
until curl -fsS "http://127.0.0.1:$PORT/_stcore/health" >/dev/null 2>&1; do
    if [[ "$("${eng[@]}" inspect -f '{{.State.Running}}' "$NAME")" != true ]]; then
        "${eng[@]}" logs "$NAME" | tail -40 >&2; say "FAIL: the container exited"; exit 1
    fi
    if (( $(printf '%.0f' "$(since "$t0")") > 300 )); then say "FAIL: no health answer in 300 s"; exit 1; fi
    sleep 1
done
health_s=$(since "$t0")
# The image's own HEALTHCHECK (health URL + python -m backend check). podman runs it on demand
# (its periodic checks need systemd timers); docker runs it every interval, so wait for the status.
if [[ "$(basename "$ENGINE")" == podman* ]]; then
    "${eng[@]}" healthcheck run "$NAME" || { say "FAIL: podman healthcheck run"; exit 1; }
else
    until [[ "$(docker inspect -f '{{.State.Health.Status}}' "$NAME")" == healthy ]]; do
        if (( $(printf '%.0f' "$(since "$t0")") > 400 )); then say "FAIL: not healthy in 400 s"; exit 1; fi
        sleep 2
    done
fi
healthy_s=$(since "$t0")

# ---- the Latent maps page in Chromium -----------------------------------------------------------
map_s=$("$PYTHON" - "http://127.0.0.1:$PORT" "$CHROMIUM" <<'PY'
import sys, time
sys.path.insert(0, ".")
from playwright.sync_api import sync_playwright
from tests.e2e.driver import CHARTS_JS, PageWatch, chart_count, open_page

base, chromium = sys.argv[1], sys.argv[2]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    w = PageWatch(page)
    t0 = time.time()
    open_page(page, base, "latent_maps")
    # both maps, drawn by the map component (or st.plotly_chart with ELX_MAP_COMPONENT=0)
    page.wait_for_function(f"() => {CHARTS_JS}.length >= 2", timeout=120_000)
    took = time.time() - t0
    boxes = page.locator('[data-testid="stException"]')
    if boxes.count():
        sys.exit("exception box on Latent maps: " + boxes.first.inner_text()[:2000])
    if w.problems():
        print("browser problems: " + "; ".join(w.problems()[:5]), file=sys.stderr)
    n = chart_count(page)
    print(f"[smoke] Latent maps: {n} chart(s), no exception box", file=sys.stderr)
    browser.close()
print(f"{took:.1f}")
PY
)

mem=$("${eng[@]}" stats --no-stream --format '{{.MemUsage}}' "$NAME" 2>/dev/null || echo unknown)

# ---- stop: SIGTERM must end it cleanly -------------------------------------------------------------
if [[ "${KEEP:-0}" != 1 ]]; then
    t0=$(now)
    "${eng[@]}" stop -t 30 "$NAME" >/dev/null
    stop_s=$(since "$t0")
    code=$("${eng[@]}" inspect -f '{{.State.ExitCode}}' "$NAME")
else
    stop_s=kept; code=-
fi

echo "engine:            ${eng[*]}"
echo "base image:        ${BASE_IMAGE:-(Dockerfile default)}; torch from ${TORCH_SOURCE:-(Dockerfile default)}"
echo "build time:        ${build_s} s"
echo "image size:        ${size}"
echo "time to health:    ${health_s} s (/_stcore/health answers)"
echo "time to healthy:   ${healthy_s} s (the image's HEALTHCHECK passes)"
echo "time to first map: ${map_s} s (Latent maps opened until its first chart is drawn)"
echo "memory in use:     ${mem} (after the page load)"
echo "stop:              ${stop_s} s, exit code ${code}"
[[ "$code" == 0 || "$code" == - ]] || { say "FAIL: exit code $code after SIGTERM"; exit 1; }

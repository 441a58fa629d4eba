# Shared by bench.sh and instructions.sh (sourced, not run): tools, the
# processes a run starts, and the same 90/10 proxy as serin and as nginx.
# Expects `log`, and sets/uses `work`, `pids`, `IDLE`, `P_V1`, `P_V2`.

need() { # COMMAND PACKAGE: install PACKAGE from Debian when COMMAND is missing
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2 from Debian"
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "$2" >/dev/null
}

# --- processes: every PID we start, and only those, is stopped on exit -----
pids=()
stop_pid() {
  local p=$1 i
  kill -TERM "$p" 2>/dev/null || return 0
  for i in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
forget() { # PID: stopped or finished, so never signalled again
  local p keep=()
  for p in "${pids[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  pids=("${keep[@]}")
}
cleanup() {
  local rc=$? p
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [ "$rc" = 0 ]; then rm -rf "$work"; else echo "$0: failed ($rc); logs kept in $work" >&2; fi
}
start_cleanup() {
  trap cleanup EXIT
  trap 'log "interrupted"; exit 130' INT TERM
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # PORT [TENTHS]
  local i
  for i in $(seq "${2:-100}"); do port_open "$1" && return 0; sleep 0.1; done
  echo "$0: 127.0.0.1:$1 did not open (logs in $work)" >&2; exit 1
}

# --- the same 90/10 proxy, as serin and as nginx ------------------------------
serin_toml() { # FILE PORT ADMIN STATE
  cat >"$1" <<TOML
[listen]
http = "127.0.0.1:$2"
[admin]
addr = "127.0.0.1:$3"
[state]
dir = "$4"
[limits]
max_connections = $(( IDLE + 2048 ))   # as nginx's worker_connections and HAProxy's maxconn

[[routes]]
name = "plain"
path_prefix = "/plain"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:$P_V1"
  weight = 90
  [[routes.versions]]
  name = "v2"
  url = "http://127.0.0.1:$P_V2"
  weight = 10

# The same split with the safety net on (issue 3): a healthy route must pay
# nothing for a chain and a breaker it does not use.
[[routes]]
name = "safe"
path_prefix = "/safe"
  [[routes.versions]]
  name = "v1"
  url = "http://127.0.0.1:$P_V1"
  weight = 90
  timeout = "10s"
  [[routes.versions]]
  name = "v2"
  url = "http://127.0.0.1:$P_V2"
  weight = 10
  timeout = "3s"
  [routes.fallback]
  chain = ["v2", "v1"]
  on = ["connect", "timeout", "5xx"]
  [routes.breaker]
  error_rate = "50%"
  min_requests = 20
  window = "10s"
  open_for = "30s"
TOML
}

nginx_conf() { # WORKERS PORT
  mkdir -p "$work/nginx"
  cat >"$work/nginx.conf" <<NGINX
worker_processes $1;
worker_rlimit_nofile $(( IDLE + 4096 ));
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
daemon off;
events { worker_connections $(( IDLE + 2048 )); }
http {
  access_log off;
  client_body_temp_path $work/nginx/body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  keepalive_timeout 300s;
  keepalive_requests 1000000;
  upstream versions {
    server 127.0.0.1:$P_V1 weight=9;
    server 127.0.0.1:$P_V2 weight=1;
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$2 reuseport;
    location / {
      proxy_pass http://versions;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header X-Forwarded-Host \$host;
    }
  }
}
NGINX
}

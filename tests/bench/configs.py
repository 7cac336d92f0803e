#!/usr/bin/env python3
"""Writes the configuration of the backend and of every proxy under test.

Usage: configs.py WORKDIR PORT_BASE HOSTS

Every proxy gets the same shape of configuration:
  * one instance with one route, Host `bench.test`, on a plain and a TLS port;
  * one instance with HOSTS routes, Host `h1.bench.test` .. `hHOSTS.bench.test`,
    on a plain port;
  * one worker (nginx worker_processes, haproxy nbthread; Caddy's GOMAXPROCS and
    wharf's TOKIO_WORKER_THREADS are set by the runner);
  * keep-alive to the upstream with up to 200 idle connections (wharf's default);
  * no client-side limit on keep-alive requests; access logs off;
  * X-Forwarded-For and X-Forwarded-Proto added, the Host header passed through;
  * the same EC P-256 certificate (WORKDIR/tls/cert.pem, key.pem).
Unknown hosts get a 404 from the proxy itself.
"""

import os
import sys

HOST = "bench.test"
IDLE_UPSTREAM = 200  # idle keep-alive connections kept per upstream (wharf's default)


def ports(base):
    """The port map shared with the runner (kept in sync with tests/bench/run)."""
    return {
        "backend": base,
        "backend_status": base + 1,
        "wharf_http": base + 10,
        "wharf_https": base + 11,
        "wharf_admin": base + 12,
        "nginx_http": base + 20,
        "nginx_https": base + 21,
        "haproxy_http": base + 30,
        "haproxy_https": base + 31,
        "caddy_http": base + 40,
        "caddy_https": base + 41,
        "wharf10k_http": base + 50,
        "wharf10k_admin": base + 52,
        "nginx10k_http": base + 60,
        "haproxy10k_http": base + 70,
        "caddy10k_http": base + 80,
        "caddy10km_http": base + 85,
        "wharfmem_http": base + 90,
        "wharfmem_admin": base + 92,
        "wharfrebuild_http": base + 95,
        "wharfrebuild_admin": base + 97,
    }


def hostnames(n):
    return [f"h{i}.bench.test" for i in range(1, n + 1)]


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------- backend
def backend(w, p):
    d = f"{w}/backend"
    os.makedirs(f"{d}/www", exist_ok=True)
    with open(f"{d}/www/1m", "wb") as f:
        f.write(os.urandom(1024 * 1024))
    write(
        f"{d}/nginx.conf",
        f"""# The shared upstream: one nginx worker answering a fixed small body on /
# and a 1 MiB static file on /1m; its connection counters on a second port.
daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log error;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    sendfile on;
    tcp_nopush on;
    server {{
        listen 127.0.0.1:{p['backend']} backlog=4096;
        root {d}/www;
        location = / {{
            default_type text/plain;
            return 200 "hello from the bench backend\\n";
        }}
        location = /1m {{
            default_type application/octet-stream;
        }}
    }}
    # Connection counters: how many connections the proxies opened to the backend.
    server {{
        listen 127.0.0.1:{p['backend_status']};
        location = / {{ stub_status; }}
    }}
}}
""",
    )


# --------------------------------------------------------------------------- wharf
def wharf_static(d, http, https, admin, dynamic, throttle=None, level="ERROR"):
    lines = [
        "entryPoints:",
        f'  web: {{ address: "127.0.0.1:{http}" }}',
    ]
    if https:
        lines.append(f'  websecure: {{ address: "127.0.0.1:{https}", http: {{ tls: {{}} }} }}')
    lines += [
        f'  traefik: {{ address: "127.0.0.1:{admin}" }}',
        "providers:",
        f"  file: {{ filename: {dynamic} }}",
    ]
    if throttle is not None:
        lines.append(f"  providersThrottleDuration: {throttle}")
    lines += ["api: { insecure: true }", "ping: {}", f"log: {{ level: {level} }}", ""]
    write(f"{d}/static.yml", "\n".join(lines))


def wharf_dynamic(path, p, hosts, tls_dir=None):
    """`hosts` None: the single `bench.test` route (plus its TLS twin when tls_dir)."""
    out = ["http:", "  routers:"]
    if hosts is None:
        out.append(f'    r: {{ rule: "Host(`{HOST}`)", service: s, entryPoints: [web] }}')
        if tls_dir:
            out.append(
                f'    r-tls: {{ rule: "Host(`{HOST}`)", service: s, entryPoints: [websecure], tls: {{}} }}'
            )
    else:
        for i, h in enumerate(hostnames(hosts), 1):
            out.append(f'    r{i}: {{ rule: "Host(`{h}`)", service: s, entryPoints: [web] }}')
    out += [
        "  services:",
        f'    s: {{ loadBalancer: {{ servers: [ {{ url: "http://127.0.0.1:{p["backend"]}" }} ] }} }}',
    ]
    if tls_dir:
        out += [
            "tls:",
            "  certificates:",
            f"    - {{ certFile: {tls_dir}/cert.pem, keyFile: {tls_dir}/key.pem }}",
        ]
    write(path, "\n".join(out) + "\n")


def wharf(w, p, n):
    tls = f"{w}/tls"
    d = f"{w}/wharf"
    wharf_static(d, p["wharf_http"], p["wharf_https"], p["wharf_admin"], f"{d}/dynamic.yml")
    wharf_dynamic(f"{d}/dynamic.yml", p, None, tls)
    d = f"{w}/wharf10k"
    wharf_static(d, p["wharf10k_http"], None, p["wharf10k_admin"], f"{d}/dynamic.yml")
    wharf_dynamic(f"{d}/dynamic.yml", p, n)
    # Fresh instance for the memory figures: the same one-route configuration.
    d = f"{w}/wharfmem"
    wharf_static(d, p["wharfmem_http"], None, p["wharfmem_admin"], f"{d}/dynamic.yml")
    wharf_dynamic(f"{d}/dynamic.yml", p, None)
    # Route-table rebuild: starts with one route; the runner renames the prepared
    # HOSTS-route file over dynamic.yml. No provider throttle, so that the log line
    # "configuration applied" follows "dynamic configuration loaded" as soon as the
    # table is built; INFO level for those two lines (this instance serves no load).
    d = f"{w}/wharfrebuild"
    wharf_static(
        d, p["wharfrebuild_http"], None, p["wharfrebuild_admin"], f"{d}/conf/dynamic.yml",
        "0s", "INFO",
    )
    wharf_dynamic(f"{d}/conf/dynamic.yml", p, None)
    wharf_dynamic(f"{d}/one.yml", p, None)
    wharf_dynamic(f"{d}/many.yml", p, n)


# --------------------------------------------------------------------------- nginx
NGINX_PROXY = f"""        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}"""


def nginx_conf(d, p, servers, names_hash=False):
    extra = ""
    if names_hash:
        extra = "    server_names_hash_max_size 65536;\n    server_names_hash_bucket_size 128;\n"
    return f"""daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log error;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    proxy_max_temp_file_size 0;
    ssl_protocols TLSv1.2 TLSv1.3;
{extra}    upstream backend {{
        server 127.0.0.1:{p['backend']};
        keepalive {IDLE_UPSTREAM};
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }}
{servers}}}
"""


def nginx(w, p, n):
    tls = f"{w}/tls"
    d = f"{w}/nginx"
    servers = f"""    server {{
        listen 127.0.0.1:{p['nginx_http']} default_server;
        listen 127.0.0.1:{p['nginx_https']} ssl default_server;
        ssl_certificate {tls}/cert.pem;
        ssl_certificate_key {tls}/key.pem;
        return 404;
    }}
    server {{
        listen 127.0.0.1:{p['nginx_http']};
        listen 127.0.0.1:{p['nginx_https']} ssl;
        server_name {HOST};
        ssl_certificate {tls}/cert.pem;
        ssl_certificate_key {tls}/key.pem;
{NGINX_PROXY}
    }}
"""
    write(f"{d}/nginx.conf", nginx_conf(d, p, servers))
    os.makedirs(f"{d}/tmp", exist_ok=True)
    d = f"{w}/nginx10k"
    parts = [
        f"    server {{\n        listen 127.0.0.1:{p['nginx10k_http']} default_server;\n        return 404;\n    }}\n"
    ]
    for h in hostnames(n):
        parts.append(
            f"    server {{\n        listen 127.0.0.1:{p['nginx10k_http']};\n        server_name {h};\n{NGINX_PROXY}\n    }}\n"
        )
    write(f"{d}/nginx.conf", nginx_conf(d, p, "".join(parts), names_hash=True))
    os.makedirs(f"{d}/tmp", exist_ok=True)


# --------------------------------------------------------------------------- haproxy
def haproxy_conf(p, frontend):
    return f"""global
    maxconn 8000
    nbthread 1
    ssl-server-verify none

defaults
    mode http
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s
    option http-keep-alive
    option forwardfor
    http-reuse always

{frontend}
backend be
    server s1 127.0.0.1:{p['backend']} pool-max-conn -1

backend be_404
    http-request deny deny_status 404
"""


def haproxy(w, p, n):
    tls = f"{w}/tls"
    d = f"{w}/haproxy"
    fe = f"""frontend fe
    bind 127.0.0.1:{p['haproxy_http']}
    bind 127.0.0.1:{p['haproxy_https']} ssl crt {tls}/combined.pem alpn http/1.1
    http-request set-header X-Forwarded-Proto https if {{ ssl_fc }}
    http-request set-header X-Forwarded-Proto http if !{{ ssl_fc }}
    use_backend be if {{ req.hdr(host),lower -m str {HOST} }}
    default_backend be_404
"""
    write(f"{d}/haproxy.cfg", haproxy_conf(p, fe))
    d = f"{w}/haproxy10k"
    write(f"{d}/hosts.map", "".join(f"{h} be\n" for h in hostnames(n)))
    fe = f"""frontend fe
    bind 127.0.0.1:{p['haproxy10k_http']}
    http-request set-header X-Forwarded-Proto http
    use_backend %[req.hdr(host),lower,map({d}/hosts.map,be_404)]
"""
    write(f"{d}/haproxy.cfg", haproxy_conf(p, fe))


# --------------------------------------------------------------------------- caddy
def caddy_global():
    return """{
    admin off
    auto_https off
    log {
        level ERROR
    }
    servers {
        protocols h1 h2
    }
}
"""


def caddy_proxy(p):
    return f"""    reverse_proxy 127.0.0.1:{p['backend']} {{
        header_up X-Forwarded-Proto {{scheme}}
        transport http {{
            keepalive 300s
            keepalive_idle_conns {IDLE_UPSTREAM}
            keepalive_idle_conns_per_host {IDLE_UPSTREAM}
        }}
    }}
"""


def caddy(w, p, n):
    tls = f"{w}/tls"
    d = f"{w}/caddy"
    text = caddy_global() + f"""
http://{HOST}:{p['caddy_http']} {{
{caddy_proxy(p)}}}

https://{HOST}:{p['caddy_https']}, https://localhost:{p['caddy_https']} {{
    tls {tls}/cert.pem {tls}/key.pem
{caddy_proxy(p)}}}

http://:{p['caddy_http']} {{
    respond 404
}}
"""
    write(f"{d}/Caddyfile", text)
    d = f"{w}/caddy10k"
    proxy = caddy_proxy(p)
    parts = [caddy_global()]
    for h in hostnames(n):
        parts.append(f"\nhttp://{h}:{p['caddy10k_http']} {{\n{proxy}}}\n")
    parts.append(f"\nhttp://:{p['caddy10k_http']} {{\n    respond 404\n}}\n")
    write(f"{d}/Caddyfile", "".join(parts))
    # The same names as one site with one host matcher: one route, one upstream pool
    # (each site block above has a reverse_proxy, and so a connection pool, of its own).
    d = f"{w}/caddy10km"
    names = " ".join(hostnames(n))
    write(
        f"{d}/Caddyfile",
        caddy_global()
        + f"\nhttp://:{p['caddy10km_http']} {{\n    @known host {names}\n"
        + f"    handle @known {{\n{caddy_proxy(p)}    }}\n    respond 404\n}}\n",
    )


def main():
    w, base, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    p = ports(base)
    backend(w, p)
    wharf(w, p, n)
    nginx(w, p, n)
    haproxy(w, p, n)
    caddy(w, p, n)
    write(f"{w}/ports.env", "".join(f"PORT_{k.upper()}={v}\n" for k, v in p.items()))


if __name__ == "__main__":
    main()

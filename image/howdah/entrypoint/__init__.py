"""The container entrypoint: environment variables -> rendered files -> supervisord.

Run as ``howdah-entrypoint`` (the image's ENTRYPOINT).  Modules:

* ``values``   - parsers for one variable (ports, booleans, host lists, URLs, YAML);
* ``dcs``      - ETCD3_* / ETCD_* (host, hosts, url, proxy, SRV), DCS_ENABLE_KUBERNETES_API, or a local etcd;
* ``memory``   - cgroup v1/v2 memory limit -> shared_buffers and max_connections;
* ``settings`` - the whole environment validated into one frozen Settings;
* ``merge``    - SPILO_CONFIGURATION / HOWDAH_CONFIGURATION deep merge (rules below);
* ``render``   - Settings -> file texts through the jinja2 templates in configs/;
* ``haproxy``  - the HAProxy role (HAPROXY_NODES ...);
* ``system``   - container facts, the random-UID passwd entry, dirs, atomic writes, TLS;
* ``main``     - dispatch and exec.

Merge rules (see configs/README.md): mappings merge recursively; scalars and lists replace;
``key: null`` deletes; ``key+: [..]`` appends to a list; ``+key: [..]`` prepends (use
``+pg_hba`` to add pg_hba lines that must match before the rendered ones).

Every file is rendered again at every container start, so a changed variable takes effect
after ``docker restart``.  A bad variable stops the container with one line such as::

    howdah-entrypoint: invalid PGPORT: 'abc' is not a port number; set it to an integer from 1 to 65535
"""

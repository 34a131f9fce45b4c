# Howdah: PostgreSQL 17 + the Howdah HA agent + pgbouncer, pgBackRest, etcd, HAProxy and
# supervisord in one image, configured by environment variables (see configs/README.md).
#
#   tools/ensure-base-image.sh            # only where debian:trixie-slim cannot be pulled
#   docker build --network host -t howdah:local .
# Debian 13 (trixie): PostgreSQL 17, etcd 3.5, pgBackRest 2.55.
ARG BASE_IMAGE=debian:trixie-slim

# --- stage 1: install the Howdah package (pip stays in this stage) -----------------------
FROM ${BASE_IMAGE} AS package
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3-pip python3-setuptools python3-wheel \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml ./
COPY image ./image
COPY configs ./configs
COPY scripts ./scripts
# Everything the final stage needs lands under /out, so it is ONE layer there.
RUN pip install --no-deps --no-build-isolation --no-compile --break-system-packages --quiet \
        --root-user-action=ignore \
        --root /out --prefix /usr . \
 && rm -f /out/usr/local/lib/python3*/dist-packages/*.dist-info/RECORD \
 && site=$(echo /out/usr/local/lib/python3*/dist-packages) \
 && python3 -m compileall -q -j 2 -d "${site#/out}" "$site" \
 && install -d /out/etc/howdah && cp -r configs /out/etc/howdah/configs \
 && install -m 755 scripts/post_bootstrap.py /out/usr/local/bin/howdah-post-bootstrap \
 && install -m 755 scripts/callback_dispatch.py /out/usr/local/bin/howdah-callback \
 && install -m 755 scripts/vip_hook.py /out/usr/local/bin/howdah-vip-hook \
 && install -m 755 scripts/aws_hook.py /out/usr/local/bin/howdah-aws-hook \
 && test -x /out/usr/local/bin/howdah-entrypoint && test -x /out/usr/local/bin/howdah \
 && test -f /out/etc/howdah/configs/howdah.yml.j2

# Custom bootstrap (clone) and pgBackRest scripts, as commands on PATH.
COPY bootstrap ./bootstrap
RUN install -m 755 bootstrap/clone_with_basebackup.py /out/usr/local/bin/howdah-clone-basebackup \
 && install -m 755 bootstrap/clone_with_pgbackrest.py /out/usr/local/bin/howdah-clone-pgbackrest \
 && install -m 755 scripts/backup_keeper.py /out/usr/local/bin/howdah-backup-keeper \
 && install -m 755 scripts/restore_replica.py /out/usr/local/bin/howdah-restore-replica

# --- stage 1b: the NET_ADMIN helper of the VIP hook (only `ip addr add|del <the VIP>`) --------
FROM ${BASE_IMAGE} AS netadmin
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev iproute2 \
 && rm -rf /var/lib/apt/lists/*
COPY image/netadmin/netadmin.c /src/netadmin.c
RUN gcc -O2 -Wall -Wextra -Werror -D_FORTIFY_SOURCE=2 -fstack-protector-strong -pie -fPIE \
        -DIP_PROGRAM="\"$(command -v ip)\"" -o /netadmin /src/netadmin.c

# --- stage 2: the image -------------------------------------------------------------------
FROM ${BASE_IMAGE}
ARG PGVERSION=17
ENV LANG=C.UTF-8 \
    PGVERSION=${PGVERSION} \
    PATH=/usr/lib/postgresql/${PGVERSION}/bin:/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    HOWDAH_TEMPLATES=/etc/howdah/configs

# The postgres user exists before postgresql-common is installed, so it gets our home;
# no default cluster is created. Group 0 owns the writable paths (OpenShift random UIDs).
RUN groupadd -g 101 postgres \
 && useradd -u 101 -g postgres -G root -d /home/postgres -s /bin/bash -M postgres \
 && mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
 && apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        -o Dpkg::Options::=--force-confold \
        postgresql-${PGVERSION} postgresql-client-${PGVERSION} \
        pgbouncer pgbackrest etcd-server haproxy supervisor openssl ca-certificates procps \
        python3 python3-psycopg2 python3-etcd python3-tornado python3-yaml python3-jinja2 \
        python3-prometheus-client python3-boto3 python3-uvloop \
        iproute2 iputils-arping libcap2-bin locales libnss-wrapper \
 && : "en_US.UTF-8 for INITDB_LOCALE, as in Spilo; compiled before the locale sources go" \
 && sed -i 's/^# *en_US.UTF-8 UTF-8/en_US.UTF-8 UTF-8/' /etc/locale.gen && locale-gen >/dev/null \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/*.log \
        /usr/share/doc/* /usr/share/man/* /usr/share/info/* \
        /usr/lib/postgresql/${PGVERSION}/lib/bitcode /usr/share/postgresql/${PGVERSION}/man \
        /usr/share/i18n/charmaps /usr/share/i18n/locales \
 && : "The AWS hook only calls EC2 (and STS/SSO for credentials): keep those API models of botocore's 400" \
 && find /usr/lib/python3/dist-packages/botocore/data -mindepth 1 -maxdepth 1 -type d \
        ! -name ec2 ! -name sts ! -name sso ! -name sso-oidc ! -name s3 -exec rm -rf {} + \
 && : "JIT is off (see configs/howdah.yml.j2): drop LLVM, 130 MB the server never loads" \
 && rm -f /usr/lib/postgresql/${PGVERSION}/lib/llvmjit*.so /usr/lib/x86_64-linux-gnu/libLLVM*.so* \
        /usr/lib/x86_64-linux-gnu/libz3.so* \
 && mkdir -p /home/postgres/pgdata /run/howdah /run/pgbouncer /var/run/postgresql /etc/howdah \
 && chown -R postgres:0 /home/postgres /run/howdah /run/pgbouncer /var/run/postgresql \
 && chmod -R g+rwX,o-rwx /home/postgres /run/howdah /run/pgbouncer /var/run/postgresql \
 && : "/etc/passwd stays root's: a random UID gets its entry through nss_wrapper (the entrypoint)" \
 && chmod 644 /etc/passwd /etc/group \
 && install -d -m 755 /usr/local/lib/howdah \
 && setcap cap_net_raw+ep "$(command -v arping)"
# VIP hook: the agent runs as postgres, so the image carries a helper with the file capability
# cap_net_admin that runs only `ip addr add|del <VIP_ADDRESS> dev <VIP_INTERFACE>` of this
# container (image/netadmin/netadmin.c); it can only run when the container has NET_ADMIN.
COPY --from=netadmin /netadmin /usr/local/lib/howdah/netadmin
RUN chown root:postgres /usr/local/lib/howdah/netadmin && chmod 750 /usr/local/lib/howdah/netadmin \
 && setcap cap_net_admin+ep /usr/local/lib/howdah/netadmin

USER postgres
WORKDIR /home/postgres
VOLUME /home/postgres/pgdata
EXPOSE 5432 6432 8008
STOPSIGNAL SIGTERM
ENTRYPOINT ["howdah-entrypoint"]

# Mount point of a pgBackRest repository shared by the nodes (PGBACKREST_REPO_PATH), owned by
# postgres so a fresh named volume mounted here is writable.
RUN mkdir -p -m 770 /home/postgres/pgbackrest && chgrp 0 /home/postgres/pgbackrest

# Last, so a source change rebuilds only this layer (and stage 1's pip step).
COPY --from=package /out/ /

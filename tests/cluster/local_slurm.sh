#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for tests/test_slurm.py and CI.
#
#   bash tests/cluster/local_slurm.sh up     # install if missing, start, wait until idle
#   bash tests/cluster/local_slurm.sh down   # stop the daemons this script started
#   bash tests/cluster/local_slurm.sh env    # print the export line for SLURM_CONF
#
# Debian's slurm-wlm daemons (slurmctld, slurmd) and munge, started by hand (no systemd):
# everything lives in $BIOSEQ_SLURM_DIR (default /tmp/bioseq-slurm), clients find the
# cluster through SLURM_CONF=$BIOSEQ_SLURM_DIR/slurm.conf. One node (this machine's CPUs
# and memory, from `slurmd -C`) with two fake GPUs, in partition `debug`. No accounting
# database: Snakemake's SLURM plugin must query job states with squeue, and MinJobAge keeps
# finished jobs visible to squeue long enough for that.
set -euo pipefail

DIR="${BIOSEQ_SLURM_DIR:-/tmp/bioseq-slurm}"
CONF="$DIR/slurm.conf"
export SLURM_CONF="$CONF"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

log() { echo "local_slurm: $*" >&2; }
die() { log "error: $*"; exit 1; }

# A PID file's process, if it is still alive.
live_pid() {
    local pid
    pid="$($SUDO cat "$1" 2> /dev/null || true)"
    if [ -n "$pid" ] && $SUDO kill -0 "$pid" 2> /dev/null; then echo "$pid"; fi
}

install_packages() {
    # the daemons live in /usr/sbin, which a user's PATH may lack
    if [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && [ -x /usr/sbin/munged ] \
        && command -v sbatch > /dev/null; then
        return
    fi
    log "installing slurmctld, slurmd, slurm-client and munge (Debian packages)"
    $SUDO apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        slurmctld slurmd slurm-client munge > /dev/null
}

start_munge() {
    if munge -n 2> /dev/null | unmunge > /dev/null 2>&1; then
        log "munged already running (not ours: left alone by 'down')"
        return
    fi
    if ! $SUDO test -s /etc/munge/munge.key; then
        $SUDO /usr/sbin/mungekey --create --keyfile=/etc/munge/munge.key
    fi
    $SUDO chown munge:munge /etc/munge/munge.key
    $SUDO chmod 0400 /etc/munge/munge.key
    $SUDO install -d -o munge -g munge -m 0755 /run/munge
    # munged refuses to run as root; it writes its PID file into /run/munge
    $SUDO runuser -u munge -- /usr/sbin/munged
    $SUDO cp /run/munge/munged.pid "$DIR/munged.pid"  # marks it as ours for 'down'
    for _ in $(seq 50); do
        if munge -n 2> /dev/null | unmunge > /dev/null 2>&1; then return; fi
        sleep 0.1
    done
    die "munged did not start (see /var/log/munge/munged.log)"
}

write_config() {
    local host node
    host="$(hostname -s)"
    # e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ... RealMemory=24105"
    node="$($SUDO /usr/sbin/slurmd -C | head -n 1)"
    $SUDO install -d -m 0755 "$DIR" "$DIR/state" "$DIR/spool"
    $SUDO tee "$CONF" > /dev/null << EOF
# Written by tests/cluster/local_slurm.sh: a single-node test cluster.
ClusterName=bioseq
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
# no cgroup plugins (nothing to set up, works in containers): track processes by parent
# PID, bind no CPUs
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# refuse at submission a job no node can hold (it would otherwise pend forever)
EnforcePartLimits=ALL
# finished jobs stay visible to squeue for 5 min (>= 3 x the plugin's first status check)
MinJobAge=300
ReturnToService=2
MpiDefault=none
GresTypes=gpu
$node NodeAddr=127.0.0.1 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    # two fake GPUs (a device file each): jobs asking for --gpus=N / --gres=gpu:N with
    # N <= 2 schedule; a 2-GPU training job runs torchrun with 2 processes inside the job
    $SUDO tee "$DIR/gres.conf" > /dev/null << EOF
AutoDetect=off
NodeName=$host Name=gpu File=/dev/null
NodeName=$host Name=gpu File=/dev/zero
EOF
}

# Snakemake runs each job's command through srun inside the job, with every SLURM_*
# variable (SLURM_CONF too) removed from srun's environment. Without SLURM_CONF (and
# without /etc/slurm/slurm.conf) SLURM clients read /run/slurm/conf/slurm.conf, where a
# configless slurmd keeps its copy: point that at this cluster's config.
link_config() {
    local target
    target="$(readlink /run/slurm/conf 2> /dev/null || true)"
    if [ -e /run/slurm/conf ] && [ "$target" != "$DIR" ]; then
        die "/run/slurm/conf belongs to another SLURM installation; not replacing it"
    fi
    if [ -e /etc/slurm/slurm.conf ]; then
        log "warning: /etc/slurm/slurm.conf exists: srun inside jobs will read it, not ours"
    fi
    $SUDO install -d -m 0755 /run/slurm
    $SUDO ln -sfn "$DIR" /run/slurm/conf
}

wait_idle() {
    local state=""
    for _ in $(seq 120); do
        state="$(sinfo -h -N -o %t 2> /dev/null | head -n 1 || true)"
        if [ "$state" = "idle" ] || [ "$state" = "mix" ]; then return; fi
        sleep 0.5
    done
    $SUDO tail -n 20 "$DIR/slurmctld.log" "$DIR/slurmd.log" >&2 || true
    die "the node is not idle after 60 s (state '${state:-none}'); logs above"
}

up() {
    if [ -n "$(live_pid "$DIR/slurmctld.pid")" ] && [ -n "$(live_pid "$DIR/slurmd.pid")" ]; then
        wait_idle
        log "already up"
        return
    fi
    down quiet  # a half-started cluster: stop what is left, start afresh
    install_packages
    $SUDO install -d -m 0755 "$DIR"
    start_munge
    write_config
    link_config
    # -c: a clean start, no jobs or node states saved by an earlier run
    $SUDO env SLURM_CONF="$CONF" /usr/sbin/slurmctld -c -f "$CONF"
    $SUDO env SLURM_CONF="$CONF" /usr/sbin/slurmd -f "$CONF"
    wait_idle
    sinfo
}

stop_pid_file() {
    local pid
    pid="$(live_pid "$1")"
    if [ -z "$pid" ]; then return; fi
    $SUDO kill "$pid"
    for _ in $(seq 100); do
        if ! $SUDO kill -0 "$pid" 2> /dev/null; then return; fi
        sleep 0.1
    done
    log "PID $pid ($1) still running after 10 s: killing it"
    $SUDO kill -9 "$pid" 2> /dev/null || true
}

down() {
    if [ -n "$(live_pid "$DIR/slurmctld.pid")" ]; then
        # jobs left over (an interrupted test): their steps would outlive slurmd
        $SUDO env SLURM_CONF="$CONF" scancel --partition=debug 2> /dev/null || true
        sleep 1
    fi
    stop_pid_file "$DIR/slurmd.pid"
    stop_pid_file "$DIR/slurmctld.pid"
    stop_pid_file "$DIR/munged.pid"
    $SUDO rm -f "$DIR/munged.pid"
    if [ "$(readlink /run/slurm/conf 2> /dev/null || true)" = "$DIR" ]; then
        $SUDO rm -f /run/slurm/conf
        $SUDO rmdir --ignore-fail-on-non-empty /run/slurm
    fi
    if [ "${1:-}" != quiet ]; then log "stopped"; fi
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    env) echo "export SLURM_CONF=$CONF" ;;
    *) die "usage: $0 up|down|env" ;;
esac

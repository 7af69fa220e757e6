# Writes a Kannel configuration (bearerbox and smsbox read the same file) for the SMPP
# comparison: one SMPP transceiver to the simulator, a sendsms user, receipts asked for
# and matched in bearerbox's memory. KANNEL_STORE=spool (the default) keeps accepted
# messages in a spool directory, so that Kannel, like AMI, keeps what it accepted on disk;
# KANNEL_STORE=none keeps them in memory only.
# Usage: kannel_conf DIR SMSC_PORT WINDOW ADMIN_PORT SMSBOX_PORT SENDSMS_PORT > kannel.conf
kannel_conf() {
    local dir=$1 smsc_port=$2 window=$3 admin_port=$4 smsbox_port=$5 sendsms_port=$6
    mkdir -p "$dir/spool"
    cat <<EOF
group = core
admin-port = $admin_port
admin-password = bench
status-password = bench
admin-allow-ip = "127.0.0.1"
smsbox-port = $smsbox_port
box-allow-ip = "127.0.0.1"
log-file = "$dir/bearerbox.log"
log-level = 2
dlr-storage = internal
EOF
    if [ "${KANNEL_STORE:-spool}" = spool ]; then
        printf 'store-type = spool\nstore-location = "%s"\n' "$dir/spool"
    fi
    cat <<EOF

group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = $smsc_port
transceiver-mode = true
smsc-username = ami
smsc-password = secret
system-type = bench
interface-version = 34
max-pending-submits = $window
enquire-link-interval = 30
msg-id-type = 0x00
source-addr-ton = 1
source-addr-npi = 1
source-addr-autodetect = false
dest-addr-ton = 1
dest-addr-npi = 1

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = $smsbox_port
sendsms-port = $sendsms_port
sendsms-interface = 127.0.0.1
log-file = "$dir/smsbox.log"
log-level = 2

group = sendsms-user
username = bench
password = bench
max-messages = 1
concatenation = false

group = sms-service
keyword = default
catch-all = true
text = "ok"
EOF
}

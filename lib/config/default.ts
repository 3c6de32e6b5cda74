// Generated from config/default.yaml by `npm run gen:schema`: do not edit.
// Embedded so that an install without config/ still has its default config;
// test/unit/config/files.test.ts fails when the two differ.
export const DEFAULT_CONFIG_YAML = `# yaml-language-server: $schema=./shipshape.schema.json
#
# shipshape's embedded default config: used when there is no --config, no
# $SHIPSHAPE_CONFIG and no config/hosts/<hostname>.yaml. Enough for \`shipshape report\`
# and a dry \`shipshape prune\` (prune only plans unless --yes or prune.apply).
#
# Every value below is the schema's default, spelled out; a host config only needs the
# keys it changes. Start one from config/hosts/example.yaml.
#
# Sizes: 2GB = 2,000,000,000 bytes (kB/MB/GB/TB: powers of 1000, as docker prints);
#        2GiB = 2,147,483,648 bytes (KiB/MiB/GiB/TiB: powers of 1024).
# Durations: a whole number and one unit out of s, m, h, d, w (30s, 15m, 168h, 7d, 2w).

# host: defaults to this machine's hostname.
stateDir: /var/lib/shipshape # journals, reports, locks
backupDir: /var/backups/shipshape # backup archives and copies
# sources a mutating command may change: strictly below one of these (/, /etc, /usr,
# /var/lib/docker… are refused whatever this says)
allowedRoots: [/opt, /srv, /home, /data, /var/www]

docker:
  # host: unix:///var/run/docker.sock   # default: $DOCKER_HOST, then the local socket
  timeout: 3s # how long the engine may take to answer; unreachable → exit 3
  callTimeout: 2m # a later call silent this long is abandoned (hung engine → exit 3)

report:
  top: 10 # biggest images, layers and directory entries shown
  bigImage: 2GB # images above this are findings
  bigAssets: 1GB # bind-mounted directories above this are findings
  paths: [] # host directories to measure, e.g. [/opt]
  concurrency: 8 # parallel engine calls and directory scans
  layersPerImage: 3 # biggest layers listed per image
  # metricsFile: /var/lib/prometheus/node-exporter/shipshape.prom # the nightly report's metrics

# Services (rebuild, rollback, torch-check) and assets (migrate-assets) are per host:
# see config/hosts/example.yaml.
services: {}
assets: {}

prune:
  keepTags: 3 # newest tags kept per repository
  backupsFor: 7d # backup images older than this go (never the newest per service)
  unusedImagesAfter: 30d # unused images older than this go
  stoppedContainersAfter: 7d # stopped containers older than this go
  buildCacheKeep: 10GB # build cache kept
  diskThreshold: 85% # above this disk use, least-recently-used images go first
  protect:
    images: [] # references or globs never removed, e.g. "postgres:*"
    labels: [shipshape.keep=true] # images/containers with this label are never removed
  volumes: false # unused volumes only when opted in
  apply: false # true: a timer's prune acts without --yes

# For \`shipshape schedule\` (the systemd timers have their own calendars):
schedule: {}
#   report: "0 2 * * *"
#   prune: "30 3 * * 0"
#   timeout: 2h # one job's longest run, also the units' TimeoutStartSec=: then it is killed
`

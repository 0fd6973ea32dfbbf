import { field, metadataOf, objects, text, type Json, type JsonObject } from './json';

/** A `meta.k8s.io/v1` TableColumnDefinition. */
export interface Column {
  name: string;
  type: 'string' | 'integer' | 'date';
  format: string;
  description: string;
  priority: number;
}

const col = (name: string, type: Column['type'], description: string, priority = 0, format = ''): Column => ({ name, type, format, description, priority });

const NAME = col('Name', 'string', 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated.', 0, 'name');
const AGE = col('Age', 'string', 'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.');
/** Age and the wide columns of workloads with a pod template. */
const TEMPLATE_COLUMNS = [
  AGE,
  col('Containers', 'string', 'Names of each container in the template.', 1),
  col('Images', 'string', 'Images referenced by each container in the template.', 1),
  col('Selector', 'string', 'Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.', 1),
];

/** `k8s.io/apimachinery/pkg/util/duration.HumanDuration`, which the server uses for Age cells. */
export function humanDuration(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 192) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (days < 730) return `${days}d`;
  return `${Math.floor(days / 365)}y`;
}

const age = (o: JsonObject, now: number): string => {
  const created = text(metadataOf(o).creationTimestamp);
  return created ? humanDuration(now - Date.parse(created)) : '<unknown>';
};

const selectorText = (selector: JsonObject): string => {
  const parts = Object.entries(field(selector, 'matchLabels')).map(([k, v]) => `${k}=${String(v)}`);
  return parts.length ? parts.join(',') : '<none>';
};

/** The wide cells of a workload with a pod template: containers, images, selector. */
function templateCells(o: JsonObject): Json[] {
  const containers = objects(field(field(field(o, 'spec'), 'template'), 'spec').containers);
  return [containers.map((c) => text(c.name)).join(','), containers.map((c) => text(c.image)).join(','), selectorText(field(field(o, 'spec'), 'selector'))];
}

function podCells(o: JsonObject, now: number): Json[] {
  const spec = field(o, 'spec');
  const status = field(o, 'status');
  const statuses = objects(status.containerStatuses);
  const ready = statuses.filter((s) => s.ready === true).length;
  const restarts = statuses.reduce((n, s) => n + (typeof s.restartCount === 'number' ? s.restartCount : 0), 0);
  const phase = metadataOf(o).deletionTimestamp ? 'Terminating' : (text(status.reason) ?? text(status.phase) ?? 'Unknown');
  return [metadataOf(o).name ?? '', `${ready}/${objects(spec.containers).length}`, phase, String(restarts), age(o, now), text(status.podIP) ?? '<none>', text(spec.nodeName) ?? '<none>', '<none>', '<none>'];
}

function servicePorts(o: JsonObject): string {
  const ports = objects(field(o, 'spec').ports).map((p) => `${String(p.port)}${p.nodePort ? `:${String(p.nodePort)}` : ''}/${text(p.protocol) ?? 'TCP'}`);
  return ports.length ? ports.join(',') : '<none>';
}

export interface TableShape {
  columns: Column[];
  cells(object: JsonObject, now: number): Json[];
}

/** The columns kube-apiserver's internal printers (pkg/printers/internalversion) define per kind. */
export const TABLES: Record<string, TableShape> = {
  pods: {
    columns: [
      NAME,
      col('Ready', 'string', 'The aggregate readiness state of this pod for accepting traffic.'),
      col('Status', 'string', 'The aggregate status of the containers in this pod.'),
      col('Restarts', 'string', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
      AGE,
      col('IP', 'string', 'podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.', 1),
      col('Node', 'string', "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node.", 1),
      col('Nominated Node', 'string', 'nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node.', 1),
      col('Readiness Gates', 'string', 'If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to "True"', 1),
    ],
    cells: podCells,
  },
  secrets: {
    columns: [NAME, col('Type', 'string', 'Used to facilitate programmatic handling of secret data.'), col('Data', 'string', 'Data contains the secret data.'), AGE],
    cells: (o, now) => [metadataOf(o).name ?? '', text(o.type) ?? 'Opaque', Object.keys(field(o, 'data')).length, age(o, now)],
  },
  configmaps: {
    columns: [NAME, col('Data', 'string', 'Data contains the configuration data.'), AGE],
    cells: (o, now) => [metadataOf(o).name ?? '', Object.keys(field(o, 'data')).length + Object.keys(field(o, 'binaryData')).length, age(o, now)],
  },
  services: {
    columns: [
      NAME,
      col('Type', 'string', 'The type of service.'),
      col('Cluster-IP', 'string', 'The cluster IP of the service.'),
      col('External-IP', 'string', 'The external IP of the service.'),
      col('Port(s)', 'string', 'The ports of the service.'),
      AGE,
      col('Selector', 'string', 'Route service traffic to pods with label keys and values matching this selector.', 1),
    ],
    cells: (o, now) => {
      const spec = field(o, 'spec');
      const selector = Object.entries(field(spec, 'selector')).map(([k, v]) => `${k}=${String(v)}`).join(',');
      return [metadataOf(o).name ?? '', text(spec.type) ?? 'ClusterIP', text(spec.clusterIP) ?? '<none>', '<none>', servicePorts(o), age(o, now), selector || '<none>'];
    },
  },
  deployments: {
    columns: [
      NAME,
      col('Ready', 'string', 'Number of the pod with ready state'),
      col('Up-to-date', 'integer', 'Total number of non-terminated pods targeted by this deployment that have the desired template spec.'),
      col('Available', 'integer', 'Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.'),
      ...TEMPLATE_COLUMNS,
    ],
    cells: (o, now) => {
      const status = field(o, 'status');
      return [metadataOf(o).name ?? '', `${Number(status.readyReplicas ?? 0)}/${Number(field(o, 'spec').replicas ?? 0)}`, Number(status.updatedReplicas ?? 0), Number(status.availableReplicas ?? 0), age(o, now), ...templateCells(o)];
    },
  },
  replicasets: {
    columns: [
      NAME,
      col('Desired', 'integer', 'Number of desired pods.'),
      col('Current', 'integer', 'Number of actual replicas.'),
      col('Ready', 'integer', 'The number of ready replicas for this replica set.'),
      ...TEMPLATE_COLUMNS,
    ],
    cells: (o, now) => {
      const status = field(o, 'status');
      return [metadataOf(o).name ?? '', Number(field(o, 'spec').replicas ?? 0), Number(status.replicas ?? 0), Number(status.readyReplicas ?? 0), age(o, now), ...templateCells(o)];
    },
  },
  namespaces: {
    columns: [NAME, col('Status', 'string', 'The status of the namespace'), AGE],
    cells: (o, now) => [metadataOf(o).name ?? '', text(field(o, 'status').phase) ?? 'Active', age(o, now)],
  },
  events: {
    columns: [
      col('Last Seen', 'string', 'The last time this event was observed.'),
      col('Type', 'string', 'Type of this event (Normal, Warning), new types could be added in the future.'),
      col('Reason', 'string', 'This should be a short, machine understandable string that gives the reason for this event being generated.'),
      col('Object', 'string', 'The object this Event is about.'),
      col('Message', 'string', 'A human-readable description of the status of this operation.'),
    ],
    cells: (o, now) => {
      const involved = field(o, 'involvedObject');
      const last = text(o.lastTimestamp);
      return [last ? humanDuration(now - Date.parse(last)) : '<unknown>', text(o.type) ?? '', text(o.reason) ?? '', `${(text(involved.kind) ?? '').toLowerCase()}/${text(involved.name) ?? ''}`, text(o.message) ?? ''];
    },
  },
};

/** Kinds without their own printer get the server's default table: Name and Age. */
export const tableFor = (resource: string): TableShape => TABLES[resource] ?? { columns: [NAME, AGE], cells: (o, now) => [metadataOf(o).name ?? '', age(o, now)] };

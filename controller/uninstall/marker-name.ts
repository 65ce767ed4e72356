// The uninstall marker's name and the acknowledgement value, apart from marker.ts so that the RBAC
// data (rbac.ts files, rendered by the chart) does not load the Kubernetes client.

/** ConfigMap in the release namespace whose existence means "knockgate is being uninstalled". */
export const UNINSTALL_MARKER = 'knockgate-uninstall';
/** What an agent writes under data.<its node> once every firewall object it owns there is gone. */
export const REMOVED = 'removed';

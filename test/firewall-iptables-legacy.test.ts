// The iptables backend with iptables-legacy (x_tables, not nf_tables) forced, end to end in network
// namespaces: the same scenarios as firewall-iptables.test.ts.
import { backendScenarios } from './helpers/firewall-scenarios.js';

backendScenarios('iptables', 'ipset', 'legacy');

// The nftables backend end to end in network namespaces (scenarios in test/helpers/firewall-scenarios.ts).
import { backendScenarios } from './helpers/firewall-scenarios.js';

backendScenarios('nftables', 'ipset');

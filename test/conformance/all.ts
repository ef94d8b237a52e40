/** Imports every group of conformance tests so that they register themselves. */
import "./cnode.js";
import "./ipc.js";
import "./sched.js";
import "./vspace.js";

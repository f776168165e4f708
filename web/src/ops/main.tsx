/** The operator console (`/ops`): RB-003 Step 1 at a glance, its actions, its checklist. */
import { render } from 'preact';
import { App } from './App.js';
import '../shared/styles.css';

const root = document.getElementById('app');
if (root) render(<App />, root);

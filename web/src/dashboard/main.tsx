/** The trader dashboard (`/`): positions, signals, risk alerts and notices, live. */
import { render } from 'preact';
import { App } from './App.js';
import '../shared/styles.css';

const root = document.getElementById('app');
if (root) render(<App />, root);

// Small helpers the panels share: element lookup and creation (HTML and SVG) and number formats.
'use strict';
/* exported $, el, svg, fmtNum, fmtBytes, fmtMs */

var SVGNS = 'http://www.w3.org/2000/svg';

function $(id) {
  return document.getElementById(id);
}
function el(tag, attrs, text) {
  var e = document.createElement(tag);
  if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function svg(tag, attrs, text) {
  var e = document.createElementNS(SVGNS, tag);
  if (attrs) for (var k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function fmtNum(v, digits) {
  if (v === null || v === undefined || isNaN(v)) return '–';
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
  return String(
    Math.round(v * Math.pow(10, digits === undefined ? 1 : digits)) / Math.pow(10, digits === undefined ? 1 : digits),
  );
}
function fmtBytes(b) {
  if (b === null || b === undefined) return '–';
  if (b >= 1073741824) return (b / 1073741824).toFixed(2) + ' GB';
  return (b / 1048576).toFixed(1) + ' MB';
}
function fmtMs(v) {
  return v === null || v === undefined ? '–' : fmtNum(v, v < 10 ? 2 : 1) + ' ms';
}

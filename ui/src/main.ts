// Entry point: the controller over the page's root and toast region.
import "./style.css";
import { start } from "./app";

start(document.getElementById("app") as HTMLElement, document.getElementById("toasts") as HTMLElement);

// The names of the PDFs we send. (Merging an order's tickets runs in a PDF worker: pdf-workers.ts.)

/** A name safe in a Content-Disposition header and on any file system. */
export function pdfFileName(...parts: string[]): string {
  return `${
    parts
      .join('-')
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .replace(/^[._]+/, '')
      .slice(0, 120) || 'tickets'
  }.pdf`;
}

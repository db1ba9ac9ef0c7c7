// Traffic counters per user since the server started (blob bytes in and out, requests).
export interface Traffic {
  bytesServed: number
  bytesReceived: number
  requestsServed: number
}

export class TrafficStats {
  private readonly byUser = new Map<string, Traffic>()

  /** All users added up. */
  total(): Traffic {
    const t: Traffic = { bytesServed: 0, bytesReceived: 0, requestsServed: 0 }
    for (const u of this.byUser.values()) {
      t.bytesServed += u.bytesServed
      t.bytesReceived += u.bytesReceived
      t.requestsServed += u.requestsServed
    }
    return t
  }

  of(user: string): Traffic {
    let t = this.byUser.get(user)
    if (!t) {
      t = { bytesServed: 0, bytesReceived: 0, requestsServed: 0 }
      this.byUser.set(user, t)
    }
    return t
  }
}
